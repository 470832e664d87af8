package demo

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingSleep stands in for the upstream's sleep: it notes the
// latencies by path and returns at once.
type recordingSleep struct {
	mu    sync.Mutex
	byKey map[string][]time.Duration
}

func newUpstreamForTest(t *testing.T) (*Upstream, *httptest.Server, *recordingSleep) {
	t.Helper()
	rs := &recordingSleep{byKey: map[string][]time.Duration{}}
	var current sync.Map // request context -> key, set by a wrapper
	up := NewUpstream(UpstreamOptions{Seed: 11, Sleep: func(ctx context.Context, d time.Duration) {
		k, _ := current.Load(ctx)
		rs.mu.Lock()
		rs.byKey[k.(string)] = append(rs.byKey[k.(string)], d)
		rs.mu.Unlock()
	}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		current.Store(ctx, r.Method+" "+r.URL.Path)
		defer current.Delete(ctx)
		up.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return up, srv, rs
}

func do(t *testing.T, method, url string, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, b
}

// Every endpoint answers JSON, mostly successfully; unknown paths are 404.
func TestUpstreamServesEveryEndpoint(t *testing.T) {
	_, srv, _ := newUpstreamForTest(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ep := range Endpoints() {
		ok := 0
		for range 40 {
			body := ""
			if ep.BodyMax > 0 {
				body = `{"name":"Ava Abara"}`
			}
			status, b := do(t, ep.Method, srv.URL+fillPath(rng, ep.Pattern), body)
			if !json.Valid(b) {
				t.Fatalf("%s %s: body is not JSON: %.100s", ep.Method, ep.Pattern, b)
			}
			if status < 300 {
				ok++
			}
		}
		if ok < 30 {
			t.Errorf("%s %s: only %d of 40 succeeded", ep.Method, ep.Pattern, ok)
		}
	}
	if status, _ := do(t, "GET", srv.URL+"/api/nothing", ""); status != 404 {
		t.Errorf("unknown path: %d, want 404", status)
	}
	if status, _ := do(t, "DELETE", srv.URL+"/api/photos/upload", ""); status != 404 {
		t.Errorf("wrong method: %d, want 404", status)
	}
}

// A guest list looks like one.
func TestUpstreamGuestList(t *testing.T) {
	_, srv, _ := newUpstreamForTest(t)
	for range 20 {
		status, b := do(t, "GET", srv.URL+"/api/guests/evt_1042", "")
		if status != 200 {
			continue
		}
		var doc struct {
			EventID string              `json:"event_id"`
			Items   []map[string]string `json:"items"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.EventID != "evt_1042" || len(doc.Items) < 10 || doc.Items[0]["name"] == "" || doc.Items[0]["rsvp"] == "" {
			t.Fatalf("guest list: %.300s", b)
		}
		return
	}
	t.Fatal("no successful guest list in 20 tries")
}

// Latencies are jittered around each endpoint's median; photo upload is
// the slow one.
func TestUpstreamLatencies(t *testing.T) {
	_, srv, rs := newUpstreamForTest(t)
	for range 200 {
		do(t, "GET", srv.URL+"/api/forms/frm_201", "")
		do(t, "POST", srv.URL+"/api/photos/upload", "jpeg bytes")
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for key, want := range map[string]time.Duration{"GET /api/forms/frm_201": 35 * time.Millisecond, "POST /api/photos/upload": 1400 * time.Millisecond} {
		ds := rs.byKey[key]
		if len(ds) != 200 {
			t.Fatalf("%s: %d latencies recorded", key, len(ds))
		}
		below, distinct := 0, map[time.Duration]bool{}
		for _, d := range ds {
			if d < want {
				below++
			}
			distinct[d] = true
		}
		// The median is the median: about half below it.
		if below < 70 || below > 130 {
			t.Errorf("%s: %d of 200 latencies below the median %v", key, below, want)
		}
		if len(distinct) < 150 {
			t.Errorf("%s: only %d distinct latencies: not jittered", key, len(distinct))
		}
	}
	slow := 0
	for _, d := range rs.byKey["POST /api/photos/upload"] {
		if d > time.Second {
			slow++
		}
	}
	if slow < 150 {
		t.Errorf("only %d of 200 uploads took over a second: the p95 alert would not see a slow route", slow)
	}
}

// About 1% of answers are 5xx in ordinary times, 90% during an incident,
// and health checks stay up throughout.
func TestUpstreamErrorsAndIncidents(t *testing.T) {
	up, srv, _ := newUpstreamForTest(t)
	count5xx := func(path string, n int) int {
		c := 0
		for range n {
			if status, _ := do(t, "GET", srv.URL+path, ""); status >= 500 {
				c++
			}
		}
		return c
	}
	if n := count5xx("/api/guests/evt_1001", 1000); n < 2 || n > 25 {
		t.Errorf("ordinary times: %d of 1000 answers were 5xx, want about 8", n)
	}
	up.SetIncident(true)
	if !up.Incident() {
		t.Fatal("incident not on")
	}
	if n := count5xx("/api/guests/evt_1001", 200); n < 160 {
		t.Errorf("incident: only %d of 200 answers were 5xx", n)
	}
	if n := count5xx("/healthz", 50); n != 0 {
		t.Errorf("incident: %d health checks failed", n)
	}
	up.SetIncident(false)
	if n := count5xx("/api/guests/evt_1001", 200); n > 10 {
		t.Errorf("after the incident: %d of 200 answers were 5xx", n)
	}
}

// A client that goes away ends the wait.
func TestUpstreamStopsWhenTheClientLeaves(t *testing.T) {
	up := NewUpstream(UpstreamOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("POST", "/api/photos/upload", strings.NewReader("x")).WithContext(ctx)
	done := make(chan struct{})
	go func() { up.ServeHTTP(httptest.NewRecorder(), req); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the upload kept waiting after its client left")
	}
}
