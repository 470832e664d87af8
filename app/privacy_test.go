package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/cli"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// requestRecords lists the records GET /admin/v1/requests answers.
func requestRecords(t *testing.T, a *app.App, query string) []map[string]any {
	t.Helper()
	r := call(t, "GET", "http://"+a.AdminAddr()+"/admin/v1/requests?limit=1000&"+query, map[string]string{"Authorization": "Bearer tok"}, "")
	var out struct {
		Records []map[string]any `json:"records"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &out) != nil {
		t.Fatalf("GET /admin/v1/requests: %d %s", r.status, r.body)
	}
	return out.Records
}

// waitRecords polls until the records API lists n records of query.
func waitRecords(t *testing.T, a *app.App, query string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := requestRecords(t, a, query)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records of %q after 10s, want %d", len(recs), query, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dataFileHolds lists which needles occur in the app's data file.
func dataFileHolds(t *testing.T, dir string, needles map[string][]byte) []string {
	t.Helper()
	return storetest.FileHolds(t, filepath.Join(dir, store.FileName), needles)
}

// With client_ip = "truncated" two clients of one /24 still have a
// per-IP bucket each, while the records (API and file) hold only the /24.
func TestTruncatedClientIPsStillLimitedApart(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	dir := t.TempDir()
	a, _ := startApp(t, func(c *config.Config) {
		c.Server.DataDir = dir
		c.Proxy.Upstream = up.URL
		c.Routes = []config.Route{{Path: "/public/*", Preset: "public"}} // tier free: a burst of 10 a minute
		c.Calendar = nil
		c.Metrics.ClientIP = "truncated"
		c.Limiter.SnapshotInterval = config.Duration(20 * time.Millisecond)
	})
	first, second := "203.0.113.77", "203.0.113.78"
	get := func(ip string) int {
		return call(t, "GET", "http://"+a.Addr()+"/public/x", map[string]string{"X-Forwarded-For": ip}, "").status
	}
	for i := range 10 {
		if s := get(first); s != 200 {
			t.Fatalf("request %d from %s: %d", i, first, s)
		}
	}
	if s := get(first); s != 429 {
		t.Fatalf("the 11th request from %s: %d, want 429", first, s)
	}
	if s := get(second); s != 200 {
		t.Fatalf("%s, same /24, has its own bucket: got %d, want 200", second, s)
	}
	recs := waitRecords(t, a, "", 12)
	// Bucket snapshots, where per-IP buckets would otherwise land, run too.
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := strconv.Atoi(metricValue(t, a, `apiwarden_limiter_snapshots_total{result="ok"}`)); n < 2; n, _ = strconv.Atoi(metricValue(t, a, `apiwarden_limiter_snapshots_total{result="ok"}`)) {
		if time.Now().After(deadline) {
			t.Fatal("no bucket snapshot within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range recs {
		if r["client_ip"] != "203.0.113.0" {
			t.Fatalf("a record shows client_ip %v, want 203.0.113.0", r["client_ip"])
		}
	}
	needles := map[string][]byte{}
	for _, ip := range []string{first, second} {
		addr := netip.MustParseAddr(ip)
		needles[ip+" (binary)"] = addr.AsSlice()
		needles[ip+" (text)"] = []byte(ip)
	}
	if found := dataFileHolds(t, dir, needles); len(found) > 0 {
		t.Fatalf("full addresses in the data file: %v", found)
	}
}

// `apiwarden erase -key` on a running server removes the key's records
// from the API and its user agents and addresses from the data file,
// keeps other keys' records, and leaves an erased audit event by "cli".
func TestEraseKeyThroughTheCLI(t *testing.T) {
	dir := t.TempDir()
	a, _ := startApp(t, func(c *config.Config) {
		c.Server.DataDir = dir
	})
	status, body := adminCall(t, a, "POST", "/admin/v1/keys", `{"name":"Jane Doe's site","owner_id":"org_1","tier":"free","meta":{"email":"jane@example.com"}}`)
	var created edgetest.Key
	if status != http.StatusCreated || json.Unmarshal(body, &created) != nil {
		t.Fatalf("create: %d %s", status, body)
	}
	id := created.Key.ID
	status, body = adminCall(t, a, "POST", "/admin/v1/keys", `{"name":"stays","owner_id":"org_2","tier":"free"}`)
	var stays edgetest.Key
	if status != http.StatusCreated || json.Unmarshal(body, &stays) != nil {
		t.Fatalf("create: %d %s", status, body)
	}
	now := time.Now().UTC()
	needles := map[string][]byte{}
	// Small batches, one flush each: blocks that small are stored
	// uncompressed, so the scan below would see what they hold.
	for batch := range 5 {
		var body strings.Builder
		for j := range 4 {
			key, agent, ip := stays.Key.ID, "SharedAgent/1.0", "198.51.100.1"
			if j%2 == 0 {
				key = id
				agent = fmt.Sprintf("EraseMeAgent/%d.%d (distinctive)", batch, j)
				ip = fmt.Sprintf("2001:db8:e5a5::%x", batch*16+j+1)
				needles[agent] = []byte(agent)
				needles[ip] = netip.MustParseAddr(ip).AsSlice()
			}
			fmt.Fprintf(&body, `{"time":%q,"method":"GET","path":"/x","status":200,"key_id":%q,"owner_id":"org_1","user_agent":%q,"client_ip":%q}`+"\n",
				now.Add(-time.Duration(batch*4+j)*time.Second).Format(time.RFC3339Nano), key, agent, ip)
		}
		if r := call(t, "POST", "http://"+a.Addr()+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson"}, body.String()); r.status != 202 || !strings.Contains(r.body, `"rejected":0`) {
			t.Fatalf("events: %d %s", r.status, r.body)
		}
		waitRecords(t, a, "", (batch+1)*4)
	}
	if found := dataFileHolds(t, dir, needles); len(found) == 0 {
		t.Fatal("before the erasure the scan finds none of the key's values: it could not tell")
	}
	other := requestRecords(t, a, "key_id="+stays.Key.ID)

	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), []string{"erase", "-key", id, "-rollups", "-blank"}, &out, &errOut,
		func(name string) string {
			return map[string]string{"APIWARDEN_URL": "http://" + a.AdminAddr(), "APIWARDEN_ADMIN_TOKEN": "tok"}[name]
		}, "test")
	if code != cli.ExitOK {
		t.Fatalf("erase exited %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "raw records      10 ") {
		t.Fatalf("erase printed:\n%s", out.String())
	}
	if got := requestRecords(t, a, "key_id="+id); len(got) != 0 {
		t.Fatalf("the records API still lists %d of the key's records", len(got))
	}
	if got := requestRecords(t, a, "key_id="+stays.Key.ID); fmt.Sprint(got) != fmt.Sprint(other) {
		t.Fatalf("other records changed:\n got %v\nwant %v", got, other)
	}
	if found := dataFileHolds(t, dir, needles); len(found) > 0 {
		t.Fatalf("the data file still holds the erased key's %v", found)
	}
	status, body = adminCall(t, a, "GET", "/admin/v1/keys/"+id+"/events?limit=1", "")
	var events struct {
		Events []struct{ Type, Actor, Detail string } `json:"events"`
	}
	if status != 200 || json.Unmarshal(body, &events) != nil || len(events.Events) != 1 ||
		events.Events[0].Type != "erased" || !strings.Contains(events.Events[0].Actor, "cli") ||
		!strings.Contains(events.Events[0].Detail, "raw_records=10") {
		t.Fatalf("audit events: %d %s", status, body)
	}
	status, body = adminCall(t, a, "GET", "/admin/v1/keys/"+id, "")
	if status != 200 || strings.Contains(string(body), "Jane") || strings.Contains(string(body), "jane@") {
		t.Fatalf("the key was not blanked: %d %s", status, body)
	}
}
