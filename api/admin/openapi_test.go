package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// The OpenAPI description and the router cannot drift: every route in the
// table is in the document with its method, and every $ref resolves.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	srv := api.New(api.Options{Admin: admin.Options{AdminToken: adminToken, DebugPprof: true, Backup: storetest.MustOpen(t), Metrics: http.NotFoundHandler()}, SharedListener: true})
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	req, _ := http.NewRequest("GET", hs.URL+"/admin/v1/openapi.json", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	param := regexp.MustCompile(`[:*]([a-z_]+)`)
	seen := 0
	for _, rt := range srv.Admin().Routes() {
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
	refs := regexp.MustCompile(`"#/components/schemas/([A-Za-z]+)"`).FindAllStringSubmatch(string(body), -1)
	for _, m := range refs {
		if _, ok := doc.Components.Schemas[m[1]]; !ok {
			t.Errorf("$ref to missing schema %s", m[1])
		}
	}
	if missing := admin.UndocumentedRoutes(srv.Admin()); len(missing) > 0 {
		t.Errorf("routes without request/response documentation: %v", missing)
	}
}

const adminToken = "openapi-test-admin-token"
