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
	send := func(method, url string, header map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, name := range []string{"X-Forwarded-Method", "X-Original-Method"} {
		status, body := send("GET", admin+"/v1/authorize", map[string]string{
			name: `=HYPERLINK("http://ev.il","x")`, "X-Forwarded-Uri": "/public/a", "X-Original-Uri": "/public/a"}, "")
		if status != http.StatusBadRequest || !strings.Contains(body, "INVALID_REQUEST") {
			t.Errorf("/v1/authorize with %s: =HYPERLINK(...): %d %s; want 400 INVALID_REQUEST", name, status, body)
		}
	}
	status, body := send("POST", admin+"/v1/check", map[string]string{"Content-Type": "application/json"},
		`{"method":"=cmd|' /C calc'!A0","path":"/public/a"}`)
	if status != http.StatusBadRequest || !strings.Contains(body, "INVALID_REQUEST") {
		t.Errorf("/v1/check with a formula for a method: %d %s; want 400 INVALID_REQUEST", status, body)
	}
	// Tokens that spreadsheets read as formulas: valid methods, recorded.
	if status, body := send("-2+3", proxy+"/public/b", nil, ""); status != http.StatusOK {
		t.Fatalf("proxy with method -2+3: %d %s", status, body)
	}
	if status, body := send("GET", admin+"/v1/authorize", map[string]string{"X-Forwarded-Method": "+1+1", "X-Forwarded-Uri": "/public/c"}, ""); status != http.StatusOK {
		t.Fatalf("/v1/authorize with method +1+1: %d %s", status, body)
	}
	time.Sleep(200 * time.Millisecond) // let the metrics writer flush

	status, export := send("GET", admin+"/admin/v1/analytics/export?format=csv", map[string]string{"Authorization": "Bearer " + testAdminToken}, "")
	if status != http.StatusOK {
		t.Fatalf("export: %d %s", status, export)
	}
	rows, err := csv.NewReader(strings.NewReader(export)).ReadAll()
	if err != nil || len(rows) < 3 {
		t.Fatalf("export: %v, %d rows:\n%s", err, len(rows), export)
	}
	for i, row := range rows {
		for j, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("row %d, column %s: %q is a live formula", i, rows[0][j], cell)
			}
		}
	}
}
