package app_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/config"
)

// /v1/events takes records of the last 24 hours (metrics.max_ingested_age)
// and at most 5 minutes ahead (max_ingested_future): older ones would file
// traffic into days already billed.
func TestEventsRefuseRecordsOutsideTheWindow(t *testing.T) {
	a, _ := startApp(t, nil)
	now := time.Now().UTC()
	var body strings.Builder
	for _, at := range []time.Duration{-time.Hour, -48 * time.Hour, -30 * 24 * time.Hour, 30 * time.Minute, time.Minute} {
		fmt.Fprintf(&body, `{"time":%q,"method":"GET","path":"/x","status":200}`+"\n", now.Add(at).Format(time.RFC3339))
	}
	got := call(t, "POST", "http://"+a.Addr()+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson"}, body.String())
	var resp struct {
		Accepted, Rejected int
		Errors             []struct {
			Line    int
			Message string
		}
	}
	if err := json.Unmarshal([]byte(got.body), &resp); err != nil {
		t.Fatalf("%d %s", got.status, got.body)
	}
	if got.status != 202 || resp.Accepted != 2 || resp.Rejected != 3 || len(resp.Errors) != 3 {
		t.Fatalf("%d %s; want lines 1 and 5 accepted, 2 to 4 refused", got.status, got.body)
	}
	for i, want := range []struct {
		line int
		text string
	}{{2, "in the past"}, {3, "in the past"}, {4, "in the future"}} {
		if e := resp.Errors[i]; e.Line != want.line || !strings.Contains(e.Message, want.text) {
			t.Errorf("error %d = %+v, want line %d saying %q", i, e, want.line, want.text)
		}
	}
}

// Distinct ingested routes are capped (metrics.max_ingested_routes,
// default 1000): beyond the cap a record's route is one overflow value,
// so a caller cannot fill the never-pruned dictionary with made-up
// routes. The overflow is counted on /metrics.
func TestEventsCapDistinctRoutes(t *testing.T) {
	a, _ := startApp(t, nil)
	const routes = 1100
	now := time.Now().UTC().Format(time.RFC3339)
	var body strings.Builder
	for i := range routes {
		fmt.Fprintf(&body, `{"time":%q,"method":"GET","route":"/r/%d","path":"/r/%d","status":200}`+"\n", now, i, i)
	}
	got := call(t, "POST", "http://"+a.Addr()+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson"}, body.String())
	if got.status != 202 || !strings.Contains(got.body, fmt.Sprintf(`"accepted":%d`, routes)) {
		t.Fatalf("%d %s", got.status, got.body)
	}
	stored := func(route string) int {
		t.Helper()
		got := call(t, "GET", "http://"+a.AdminAddr()+"/admin/v1/requests?limit=1000&route="+url.QueryEscape(route),
			map[string]string{"Authorization": "Bearer tok"}, "")
		var page struct{ Records []json.RawMessage }
		if err := json.Unmarshal([]byte(got.body), &page); err != nil || got.status != 200 {
			t.Fatalf("%d %s", got.status, got.body)
		}
		return len(page.Records)
	}
	// The writer flushes within its interval: wait until the last route's
	// record is stored rather than sleep a guess.
	for deadline := time.Now().Add(10 * time.Second); stored("(overflow)") < routes-1000 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := stored("/r/999"); n != 1 {
		t.Errorf("route /r/999 (the 1000th) has %d records, want 1", n)
	}
	if n := stored("/r/1000"); n != 0 {
		t.Errorf("route /r/1000 (past the cap) has %d records, want 0", n)
	}
	if n := stored("(overflow)"); n != routes-1000 {
		t.Errorf("the overflow route has %d records, want %d", n, routes-1000)
	}
	metrics := call(t, "GET", "http://"+a.AdminAddr()+"/metrics", nil, "")
	if !strings.Contains(metrics.body, fmt.Sprintf("apiwarden_ingested_route_overflow_total %d", routes-1000)) {
		t.Errorf("/metrics does not count %d overflowed routes:\n%s", routes-1000, grepLines(metrics.body, "ingested"))
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The cap counts the routes already stored, so a restart makes no new
// room: with max_ingested_routes = 2, two routes filed before a restart
// leave none for a third after it.
func TestIngestedRouteCapSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	post := func(a interface{ Addr() string }, route string) {
		t.Helper()
		body := fmt.Sprintf(`{"time":%q,"method":"GET","route":%q,"status":200}`+"\n", time.Now().UTC().Format(time.RFC3339), route)
		if got := call(t, "POST", "http://"+a.Addr()+"/v1/events", nil, body); got.status != 202 {
			t.Fatalf("%d %s", got.status, got.body)
		}
	}
	mutate := func(c *config.Config) {
		c.Server.DataDir = dir
		c.Metrics.MaxIngestedRoutes = 2
	}
	a, stop := startApp(t, mutate)
	post(a, "/a")
	post(a, "/b")
	stop() // flushes the records

	a, _ = startApp(t, mutate)
	post(a, "/c")
	post(a, "/a")
	metrics := call(t, "GET", "http://"+a.AdminAddr()+"/metrics", nil, "")
	for _, want := range []string{"apiwarden_ingested_routes 2", "apiwarden_ingested_route_overflow_total 1"} {
		if !strings.Contains(metrics.body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics.body, "ingested"))
		}
	}
}

// A reload that raises max_ingested_routes makes room at once, without a
// restart: with 2, a third route overflows; after a reload to 3 the next
// new route is filed under its own name.
func TestIngestedRouteCapGrowsOnReload(t *testing.T) {
	var cfg *config.Config
	a, _ := startApp(t, func(c *config.Config) {
		c.Metrics.MaxIngestedRoutes = 2
		cfg = c
	})
	post := func(route string) {
		t.Helper()
		body := fmt.Sprintf(`{"time":%q,"method":"GET","route":%q,"status":200}`+"\n", time.Now().UTC().Format(time.RFC3339), route)
		if got := call(t, "POST", "http://"+a.Addr()+"/v1/events", nil, body); got.status != 202 {
			t.Fatalf("%d %s", got.status, got.body)
		}
	}
	post("/a")
	post("/b")
	post("/c") // overflows
	next := *cfg
	next.Metrics.MaxIngestedRoutes = 3
	if err := a.Reload(&next); err != nil {
		t.Fatal(err)
	}
	post("/d")
	post("/e") // overflows
	metrics := call(t, "GET", "http://"+a.AdminAddr()+"/metrics", nil, "")
	for _, want := range []string{"apiwarden_ingested_routes 3", "apiwarden_ingested_routes_max 3", "apiwarden_ingested_route_overflow_total 2"} {
		if !strings.Contains(metrics.body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics.body, "ingested"))
		}
	}
}
