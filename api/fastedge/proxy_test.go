package fastedge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/metrics"
)

// panicky is an engine that panics on /panic and lets everything else
// through as an internal route.
type panicky struct{ gateway.Decider }

func (p panicky) Decide(now time.Time, f *enforce.Facts) enforce.Decision {
	if f.Path == "/panic" {
		panic("boom")
	}
	return p.Decider.Decide(now, f)
}

// startProxy serves a fasthttp proxy in front of upstream, every path an
// internal route (no key, no limit): forwarding is under test.
func startProxy(t *testing.T, upstream string, o gateway.ProxyOptions, engine func(gateway.Decider) gateway.Decider) (addr string, recs *edgetest.Records) {
	t.Helper()
	routes, err := enforce.NewRoutes(nil, enforce.Route{Preset: enforce.Internal})
	if err != nil {
		t.Fatal(err)
	}
	var d gateway.Decider = enforce.NewEngine(nil, nil, enforce.Policy{Routes: routes})
	if engine != nil {
		d = engine(d)
	}
	o.Upstream, _ = url.Parse(upstream)
	if o.ResponseHeaderTimeout == 0 {
		o.ResponseHeaderTimeout = 5 * time.Second
	}
	recs = &edgetest.Records{}
	gw := gateway.New(gateway.Options{Gate: gateway.GateOptions{Engine: d, Recorder: recs, InternalSampleRate: 1}, Proxy: o})
	s := New(Options{Gateway: gw, Fallback: gw.Handler(), MaxHeaderBytes: 8 << 10, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second})
	return edgetest.Serve(t, s.Serve, s.Close), recs
}

// A panic on the lean path closes that request's connection, as on
// net/http, and the server goes on serving the next one; fasthttp alone
// would end the process.
func TestProxyPanicEndsOnlyItsConnection(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer up.Close()
	addr, _ := startProxy(t, up.URL, gateway.ProxyOptions{}, func(d gateway.Decider) gateway.Decider { return panicky{d} })
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/panic")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || !resp.Close {
			t.Fatalf("panic answered %d, close %v", resp.StatusCode, resp.Close)
		}
	}
	resp, err = client.Get("http://" + addr + "/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after the panic: %d", resp.StatusCode)
	}
}

// The upstream client's failures answer and record as the net/http path
// does: a refused connection 502, an upstream slower than
// response_header_timeout 504, and so does a request that waited that
// long for one of max_conns_per_host; an upstream 5xx is passed on and
// recorded as the upstream's.
func TestProxyUpstreamFailures(t *testing.T) {
	release, holding := make(chan struct{}), make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			<-r.Context().Done() // the proxy gives up and closes the connection
		case "/hold":
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			holding <- struct{}{}
			<-release
			io.WriteString(w, "held")
			return
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	// Port 1 refuses: nothing listens there, and no test's listener on
	// port 0 can be given it (a closed test server's port could be).
	deadAddr, deadRecs := startProxy(t, "http://127.0.0.1:1", gateway.ProxyOptions{DialTimeout: time.Second}, nil)
	addr, recs := startProxy(t, up.URL, gateway.ProxyOptions{ResponseHeaderTimeout: 200 * time.Millisecond, MaxConnsPerHost: 1}, nil)

	client := &http.Client{Timeout: 10 * time.Second} // a proxy that never gives up fails, not hangs
	get := func(addr, path string) (int, string) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name     string
		addr     string
		recs     *edgetest.Records
		path     string
		status   int
		code     string
		category metrics.ErrorCategory
	}{
		{"refused", deadAddr, deadRecs, "/a", 502, "UPSTREAM_UNREACHABLE", metrics.ErrorUpstreamUnreachable},
		{"slow head", addr, recs, "/slow", 504, "UPSTREAM_TIMEOUT", metrics.ErrorUpstreamTimeout},
		{"upstream 503", addr, recs, "/fail", 503, "", metrics.ErrorUpstream5xx},
	}
	n := map[*edgetest.Records]int{}
	for _, c := range cases {
		status, body := get(c.addr, c.path)
		n[c.recs]++
		if status != c.status || !strings.Contains(body, c.code) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.code)
		}
		if rec := c.recs.Last(t, n[c.recs]); rec.Status != c.status || rec.ErrorCategory != c.category {
			t.Errorf("%s: recorded %d %v, want %d %v", c.name, rec.Status, rec.ErrorCategory, c.status, c.category)
		}
	}

	// A known-length body the upstream sends after its head may take
	// longer than response_header_timeout; meanwhile its request holds
	// the only upstream slot, and the next request waits for it no longer
	// than response_header_timeout.
	type answer struct {
		status int
		body   string
	}
	held := make(chan answer, 1)
	go func() {
		status, body := get(addr, "/hold")
		held <- answer{status, body}
	}()
	<-holding
	if status, body := get(addr, "/a"); status != 504 || !strings.Contains(body, "UPSTREAM_TIMEOUT") {
		t.Errorf("waiting for a slot: %d %s, want 504", status, body)
	}
	release <- struct{}{}
	if a := <-held; a.status != 200 || a.body != "held" {
		t.Errorf("a body slower than the header timeout: %d %q", a.status, a.body)
	}
	if status, _ := get(addr, "/a"); status != 200 {
		t.Errorf("after the slot came free: %d", status)
	}
}
