package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAnalyticsQueries sends arbitrary query strings to the analytics
// endpoints over the fixture's real store. Whatever the parameters, the
// answer is 200 with a well-formed body or 400 INVALID_PARAMETER (or
// another 4xx error document), never a 500 or a panic. Seeds:
// testdata/fuzz/FuzzAnalyticsQueries.
func FuzzAnalyticsQueries(f *testing.F) {
	fx := newAnFixture(f)
	handler := fx.srv.AdminHandler()
	endpoints := []string{
		"/admin/v1/analytics/summary", "/admin/v1/analytics/timeseries", "/admin/v1/analytics/top",
		"/admin/v1/analytics/export", "/admin/v1/analytics/usage", "/admin/v1/requests",
	}
	f.Fuzz(func(t *testing.T, endpoint uint8, query string) {
		path := endpoints[int(endpoint)%len(endpoints)]
		req, err := http.NewRequest("GET", path+"?"+query, nil)
		if err != nil {
			return // not a URL a client could send
		}
		req.Header.Set("Authorization", "Bearer "+adminToken)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		ct := rec.Header().Get("Content-Type")
		switch {
		case rec.Code == 200:
			if strings.HasPrefix(ct, "application/json") && !json.Valid(body) {
				t.Fatalf("%s?%s: 200 with invalid JSON: %.200s", path, query, body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var doc struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &doc); err != nil || doc.Error.Code == "" || doc.Error.Message == "" {
				t.Fatalf("%s?%s: %d without an error document: %.200s", path, query, rec.Code, body)
			}
		default:
			t.Fatalf("%s?%s: status %d: %.300s", path, query, rec.Code, body)
		}
	})
}
