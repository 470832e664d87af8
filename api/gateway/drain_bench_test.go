package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// What HTTPServer's wrapper (closingAfterClose) adds to a request on the
// net/http edge, against the same handler unwrapped:
//
//	go test -run '^$' -bench ClosingAfterClose -benchmem ./api/gateway/
func BenchmarkClosingAfterClose(b *testing.B) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	s := &HTTPServer{gw: &Gateway{}}
	for name, h := range map[string]http.Handler{"bare": inner, "wrapped": s.closingAfterClose(inner)} {
		b.Run(name, func(b *testing.B) {
			w, r := httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
