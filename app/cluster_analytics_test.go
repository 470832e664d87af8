package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// Two instances each take records through /v1/events; the requests route
// of either pages through every record of both, and while PostgreSQL is
// down the analytics routes, exports included, answer 503 UNAVAILABLE
// instead of answering for one instance alone.
func TestClusterAnalyticsAnswerForEveryInstance(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "")
	b, _ := startClusterApp(t, url, "b", "")
	now := time.Now().UTC()
	for i, in := range []*app.App{a, b} {
		var body strings.Builder
		for j := range 60 {
			fmt.Fprintf(&body, `{"time":%q,"method":"GET","path":"/x/%d","status":200,"request_id":"%c-%d"}`+"\n",
				now.Add(-time.Duration(j)*time.Second).Format(time.RFC3339), j, 'a'+i, j)
		}
		if got := call(t, "POST", "http://"+in.Addr()+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson"}, body.String()); got.status != 202 {
			t.Fatalf("events: %d %s", got.status, got.body)
		}
	}
	for name, in := range map[string]*app.App{"a": a, "b": b} {
		edgetest.Poll(t, 20*time.Second, name+" pages through both instances' records", func() bool {
			return len(requestIDs(t, in, 25)) == 120
		})
	}

	startPostgres := pg.StopForTest(t)
	for _, path := range []string{"/admin/v1/analytics/summary?period=day", "/admin/v1/requests",
		"/admin/v1/analytics/top?by=route", "/admin/v1/analytics/usage?month=" + now.Format("2006-01"),
		"/admin/v1/analytics/export?format=ndjson", "/admin/v1/analytics/export?format=csv&interval=hour"} {
		status, body := adminCall(t, a, "GET", path, "")
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if status != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "UNAVAILABLE" {
			t.Errorf("GET %s with PostgreSQL down: %d %s, want 503 UNAVAILABLE", path, status, body)
		}
	}
	startPostgres()
	// Until the instance has seen PostgreSQL back (its readiness check
	// reconnects), the route may still answer 503.
	edgetest.Poll(t, 20*time.Second, "the requests route after PostgreSQL returned", func() bool {
		ids, err := pageRequestIDs(t, b, 100)
		return err == nil && len(ids) == 120
	})
}

// requestIDs pages GET /admin/v1/requests to its end, limit records a
// page, and returns the request ids in order; it fails t on a repeat or
// an answer other than 200.
func requestIDs(t *testing.T, a *app.App, limit int) []string {
	t.Helper()
	ids, err := pageRequestIDs(t, a, limit)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// pageRequestIDs is requestIDs returning an answer other than 200 as an
// error; it still fails t on a repeat.
func pageRequestIDs(t *testing.T, a *app.App, limit int) ([]string, error) {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	cursor := ""
	for {
		status, body := adminCall(t, a, "GET", fmt.Sprintf("/admin/v1/requests?limit=%d&cursor=%s", limit, url.QueryEscape(cursor)), "")
		var page struct {
			Records []struct {
				RequestID string `json:"request_id"`
			} `json:"records"`
			Next string `json:"next_cursor"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
			return nil, fmt.Errorf("GET /admin/v1/requests: %d %s", status, body)
		}
		for _, r := range page.Records {
			if seen[r.RequestID] {
				t.Fatalf("request %s on two pages", r.RequestID)
			}
			seen[r.RequestID] = true
			ids = append(ids, r.RequestID)
		}
		if page.Next == "" {
			return ids, nil
		}
		cursor = page.Next
	}
}
