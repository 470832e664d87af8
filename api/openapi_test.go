package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// The OpenAPI description and the router cannot drift: every route in the
// table is in the document with its method, and every $ref resolves.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	srv := api.New(api.Options{AdminToken: adminToken, SharedListener: true, DebugPprof: true, Backup: storetest.MustOpen(t),
		Metrics: http.NotFoundHandler()})
	f := &fixture{http: newHTTPServer(t, srv)}
	r := f.admin(t, "GET", "/admin/v1/openapi.json", nil)
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	param := regexp.MustCompile(`[:*]([a-z_]+)`)
	seen := 0
	for _, rt := range srv.Routes() {
		path := param.ReplaceAllString(rt.Path, "{$1}")
		if i := strings.Index(rt.Path, "*"); i > 0 && (strings.HasPrefix(rt.Path, "/ui/") || strings.HasPrefix(rt.Path, "/debug/")) {
			path = rt.Path[:i] + "*"
		}
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("route %s %s is not in the document", rt.Method, rt.Path)
			continue
		}
		if _, ok := ops[strings.ToLower(rt.Method)]; !ok {
			t.Errorf("route %s %s: method missing in the document", rt.Method, rt.Path)
		}
		seen++
	}
	ops := 0
	for _, m := range doc.Paths {
		ops += len(m)
	}
	if ops != seen {
		t.Errorf("the document has %d operations, the router %d", ops, seen)
	}
	refs := regexp.MustCompile(`"#/components/schemas/([A-Za-z]+)"`).FindAllStringSubmatch(string(r.body), -1)
	for _, m := range refs {
		if _, ok := doc.Components.Schemas[m[1]]; !ok {
			t.Errorf("$ref to missing schema %s", m[1])
		}
	}
	if missing := api.UndocumentedRoutes(srv); len(missing) > 0 {
		t.Errorf("routes without request/response documentation: %v", missing)
	}
}

func newHTTPServer(t *testing.T, srv *api.Server) *httptest.Server {
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	return hs
}
