package app_test

import (
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/config"
)

// A client picks the method recorded for its request: through forward
// auth's X-Forwarded-Method, /v1/check's method, or the request line
// itself (`curl -X '-2+3'`, an HTTP token that is also a formula). None
// may reach an exported CSV as a live spreadsheet formula, and a
// forwarded method that is not an HTTP token is refused.
func TestMethodsDoNotBecomeFormulasInTheExport(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	a, _ := startApp(t, func(c *config.Config) {
		c.Security.AdminToken = testAdminToken
		c.Proxy.Upstream = up.URL
		c.Routes = []config.Route{{Path: "/public/*", Preset: "public"}}
		c.Calendar = nil
	})
	admin, proxy := "http://"+a.AdminAddr(), "http://"+a.Addr()
	for _, name := range []string{"X-Forwarded-Method", "X-Original-Method"} {
		r := call(t, "GET", admin+"/v1/authorize", map[string]string{
			name: `=HYPERLINK("http://ev.il","x")`, "X-Forwarded-Uri": "/public/a", "X-Original-Uri": "/public/a"}, "")
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "INVALID_REQUEST") {
			t.Errorf("/v1/authorize with %s: =HYPERLINK(...): %d %s; want 400 INVALID_REQUEST", name, r.status, r.body)
		}
	}
	r := call(t, "POST", admin+"/v1/check", map[string]string{"Content-Type": "application/json"},
		`{"method":"=cmd|' /C calc'!A0","path":"/public/a"}`)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "INVALID_REQUEST") {
		t.Errorf("/v1/check with a formula for a method: %d %s; want 400 INVALID_REQUEST", r.status, r.body)
	}
	// Tokens that spreadsheets read as formulas: valid methods, recorded.
	if r := call(t, "-2+3", proxy+"/public/b", nil, ""); r.status != http.StatusOK {
		t.Fatalf("proxy with method -2+3: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", admin+"/v1/authorize", map[string]string{"X-Forwarded-Method": "+1+1", "X-Forwarded-Uri": "/public/c"}, ""); r.status != http.StatusOK {
		t.Fatalf("/v1/authorize with method +1+1: %d %s", r.status, r.body)
	}
	// Export until the writer has flushed both records (header + 2 rows),
	// rather than sleep a guess that a loaded machine outlasts.
	var export answer
	var rows [][]string
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		export = call(t, "GET", admin+"/admin/v1/analytics/export?format=csv", bearer(testAdminToken), "")
		if export.status != http.StatusOK {
			t.Fatalf("export: %d %s", export.status, export.body)
		}
		rows, err = csv.NewReader(strings.NewReader(export.body)).ReadAll()
		if (err == nil && len(rows) >= 3) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(rows) < 3 {
		t.Fatalf("export: %v, %d rows:\n%s", err, len(rows), export.body)
	}
	for i, row := range rows {
		for j, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("row %d, column %s: %q is a live formula", i, rows[0][j], cell)
			}
		}
	}
}
