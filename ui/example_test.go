package ui_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/apiwarden/apiwarden/ui"
)

func ExampleNew() {
	h := ui.New()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"))
	// Output: 200 text/html; charset=utf-8 no-cache
}
