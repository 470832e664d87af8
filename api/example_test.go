package api_test

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
)

func ExampleNew() {
	srv := api.New(api.Options{Admin: admin.Options{AdminToken: "secret-token"}})
	srv.Admin().SetReady(true)
	hs := httptest.NewServer(srv.AdminHandler())
	defer hs.Close()

	resp, _ := hs.Client().Get(hs.URL + "/admin/v1/keys")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	fmt.Print(string(body[:len(`{"error":{"code":"UNAUTHORIZED"`)]), "…\n")
	// Output:
	// 401 Bearer realm="apiwarden"
	// {"error":{"code":"UNAUTHORIZED"…
}
