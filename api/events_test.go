package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// eventsNow is the servers' clock: the events below are of that morning,
// inside the 24 hours /v1/events takes.
var eventsNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newEventsServer(t *testing.T) (*httptest.Server, *metrics.Recorder, *metrics.Reader) {
	t.Helper()
	st := storetest.MustOpen(t)
	rec, err := metrics.New(metrics.Options{Store: st, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Options{Gateway: gateway.Options{Events: rec, Gate: gateway.GateOptions{ServiceToken: "svc"}}, Admin: admin.Options{AdminToken: adminToken}, SharedListener: true,
		Now: func() time.Time { return eventsNow }})
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	return hs, rec, metrics.NewReader(st)
}

func storedRecords(t *testing.T, rec *metrics.Recorder, rd *metrics.Reader) []metrics.Record {
	t.Helper()
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	page, err := rd.Records(context.Background(), metrics.RecordQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Records
}

func event(i int, status int) string {
	return fmt.Sprintf(`{"time":"2026-11-27T10:00:%02dZ","request_id":"r%d","method":"GET","route":"/api/forms/*","path":"/api/forms/%d","status":%d,"latency_ms":12.5,"key_id":"key_x"}`, i%60, i, i, status)
}

func TestEventsIngest(t *testing.T) {
	hs, rec, rd := newEventsServer(t)
	h := map[string]string{"Content-Type": "application/json", "X-Apiwarden-Token": "svc"}
	type answer struct {
		Accepted, Rejected, Dropped int
		Errors                      []struct {
			Index   int    `json:"index"`
			Line    int    `json:"line"`
			Message string `json:"message"`
		}
	}

	// A JSON array.
	r := do(t, "POST", hs.URL+"/v1/events", h, "["+event(1, 200)+","+event(2, 503)+"]")
	if a := decode[answer](t, r); r.status != 202 || a.Accepted != 2 || a.Rejected != 0 {
		t.Fatalf("array: %d %s", r.status, r.body)
	}
	// NDJSON with one bad line: the good ones are kept, the bad one named.
	nd := event(3, 200) + "\n" + `{"time":"2026-11-27T10:00:04Z","method":"GET","status":999}` + "\n" + event(5, 404) + "\n"
	r = do(t, "POST", hs.URL+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson", "X-Apiwarden-Token": "svc"}, nd)
	a := decode[answer](t, r)
	if r.status != 202 || a.Accepted != 2 || a.Rejected != 1 || len(a.Errors) != 1 || a.Errors[0].Line != 2 || !strings.Contains(a.Errors[0].Message, "status") {
		t.Fatalf("ndjson with a bad line: %d %s", r.status, r.body)
	}
	got := storedRecords(t, rec, rd)
	if len(got) != 4 {
		t.Fatalf("%d records stored, want 4", len(got))
	}
	ids := map[string]bool{}
	for _, g := range got {
		ids[g.RequestID] = true
	}
	for _, want := range []string{"r1", "r2", "r3", "r5"} {
		if !ids[want] {
			t.Errorf("record %s not stored", want)
		}
	}

	// Too many records: 413 with the error body, nothing stored.
	var b strings.Builder
	b.WriteString("[")
	for i := range metrics.MaxEventsPerBatch + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(event(i, 200))
	}
	b.WriteString("]")
	checkError(t, do(t, "POST", hs.URL+"/v1/events", h, b.String()), 413, "PAYLOAD_TOO_LARGE")
	// Not JSON at all: 400.
	checkError(t, do(t, "POST", hs.URL+"/v1/events", h, "this is not json"), 400, "INVALID_JSON")
	checkError(t, do(t, "POST", hs.URL+"/v1/events", h, ""), 400, "INVALID_JSON")
	// The service token guards it.
	checkError(t, do(t, "POST", hs.URL+"/v1/events", map[string]string{"Content-Type": "application/json"}, "["+event(1, 200)+"]"), 401, "UNAUTHORIZED")
	if n := len(storedRecords(t, rec, rd)); n != 4 {
		t.Fatalf("%d records after refused batches, want 4", n)
	}
}

// Ingested records are tied to the key store: an unknown key is refused,
// owner and tier are the key's whatever the record says, and a record
// without a key may name neither.
func TestEventsTakeOwnerAndTierFromTheKey(t *testing.T) {
	st := storetest.MustOpen(t)
	rec, err := metrics.New(metrics.Options{Store: st, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.New(keys.Options{Store: st, Secret: []byte("events-secret-events-secret"),
		Policy: keys.Policy{Tiers: []string{"basic", "free"}, DefaultTier: "free"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	k, _, err := ks.Create(keys.CreateParams{Name: "app", OwnerID: "org_1", Tier: "basic"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Options{Gateway: gateway.Options{Events: rec, Keys: ks, Gate: gateway.GateOptions{ServiceToken: "svc"}}, Admin: admin.Options{AdminToken: adminToken, Keys: ks}, SharedListener: true,
		Now: func() time.Time { return eventsNow }})
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)

	line := func(id, fields string) string {
		return `{"time":"2026-11-27T10:00:00Z","request_id":"` + id + `","method":"GET","path":"/x","status":200` + fields + "}\n"
	}
	body := line("key-only", `,"key_id":"`+k.ID+`"`) +
		line("wrong-owner", `,"key_id":"`+k.ID+`","owner_id":"org_evil","tier":"enterprise"`) +
		line("unknown-key", `,"key_id":"key_made_up"`) +
		line("owner-without-key", `,"owner_id":"org_1"`) +
		line("anonymous", "")
	r := do(t, "POST", hs.URL+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson", "X-Apiwarden-Token": "svc"}, body)
	type answer struct {
		Accepted, Rejected int
		Errors             []struct {
			Line    int    `json:"line"`
			Message string `json:"message"`
		}
	}
	a := decode[answer](t, r)
	if r.status != 202 || a.Accepted != 3 || a.Rejected != 2 || len(a.Errors) != 2 ||
		a.Errors[0].Line != 3 || !strings.Contains(a.Errors[0].Message, "key_made_up") ||
		a.Errors[1].Line != 4 || !strings.Contains(a.Errors[1].Message, "key_id") {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got := map[string]metrics.Record{}
	for _, g := range storedRecords(t, rec, metrics.NewReader(st)) {
		got[g.RequestID] = g
	}
	for id, want := range map[string][2]string{"key-only": {"org_1", "basic"}, "wrong-owner": {"org_1", "basic"}, "anonymous": {"", ""}} {
		if g, ok := got[id]; !ok || g.OwnerID != want[0] || g.Tier != want[1] {
			t.Errorf("%s: stored %v with owner %q, tier %q; want %q, %q", id, ok, g.OwnerID, g.Tier, want[0], want[1])
		}
	}
	if len(got) != 3 {
		t.Errorf("%d records stored, want 3", len(got))
	}
}

// A record with one huge field is refused on its own, and reading it
// costs memory bounded by the per-record caps, not by the field: six such
// posts in parallel used to grow the process by 700 MB, all answered 202.
func TestEventsHugeFieldIsRefusedWithBoundedMemory(t *testing.T) {
	hs, rec, rd := newEventsServer(t)
	const huge = 24 << 20
	// The client sends one MiB 24 times over, read by read (hiding
	// WriteTo, which would copy each MiB), so that what is counted is the
	// server's.
	mib := strings.Repeat("a", 1<<20)
	parts := []io.Reader{strings.NewReader("[" + event(1, 200) + `,{"time":"2026-11-27T10:00:02Z","method":"GET","status":200,"user_agent":"`)}
	for range huge >> 20 {
		parts = append(parts, strings.NewReader(mib))
	}
	body := struct{ io.Reader }{io.MultiReader(append(parts, strings.NewReader(`"},`+event(3, 200)+"]"))...)}
	req, err := http.NewRequest("POST", hs.URL+"/v1/events", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Apiwarden-Token", "svc")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)

	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB field: %d KiB allocated while the request was served", huge>>20, allocated>>10)
	if allocated > 4<<20 {
		t.Errorf("serving a batch with a %d MiB field allocated %d MiB; want under 4 MiB", huge>>20, allocated>>20)
	}
	var a struct {
		Accepted, Rejected int
		Errors             []metrics.EventError
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		t.Fatalf("%d %s", resp.StatusCode, answer)
	}
	if resp.StatusCode != 202 || a.Accepted != 2 || a.Rejected != 1 || len(a.Errors) != 1 ||
		a.Errors[0].Index != 1 || !strings.Contains(a.Errors[0].Message, "user_agent") {
		t.Fatalf("%d %s", resp.StatusCode, answer)
	}
	if n := len(storedRecords(t, rec, rd)); n != 2 {
		t.Fatalf("%d records stored, want 2", n)
	}
}
