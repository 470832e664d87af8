package gateway_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store/storetest"
	"github.com/apiwarden/apiwarden/telemetry"
)

// The request decision and record of a proxied request, without the
// network: what every request costs apiwarden on top of forwarding.
//
//	go test -run '^$' -bench 'DecideProxy|DecideAuthorize' -benchmem ./api/gateway/

// decideWorld is a gateway over real parts, as app assembles them: keys
// in a bbolt file, the local limiter, the engine, the metrics recorder
// writing to the store in the background, the realtime view and the
// Prometheus counters.
type decideWorld struct {
	gw     *gateway.Gateway
	secret string
	rec    *metrics.Recorder
}

// newDecideWorld builds the world; without write the recorder only
// buffers (and drops once full), so that nothing but the decision
// allocates.
func newDecideWorld(b testing.TB, write bool) *decideWorld {
	b.Helper()
	st := storetest.MustOpen(b)
	svc, err := keys.New(keys.Options{Store: st, Secret: []byte("bench-secret-bench-secret"),
		Policy: keys.Policy{Tiers: []string{"free", "unlimited"}, DefaultTier: "free", Scopes: []string{"forms:read"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(svc.Close)
	lim, err := limiter.New(limiter.Options{Tiers: map[string]limiter.Tier{
		"free":      {RequestsPerHour: 100, BurstPerMinute: 3},
		"unlimited": {RequestsPerHour: 1e12, BurstPerMinute: 1e12},
	}})
	if err != nil {
		b.Fatal(err)
	}
	routes, err := enforce.NewRoutes([]enforce.Route{
		{Pattern: "/api/forms/*", Preset: enforce.Protected, Scopes: []string{"forms:read"}},
	}, enforce.Route{Preset: enforce.Protected})
	if err != nil {
		b.Fatal(err)
	}
	engine := enforce.NewEngine(svc, lim, enforce.Policy{Routes: routes, PublicTier: "free", StrictestTier: "free"})
	opts := metrics.Options{Store: st, FlushInterval: 100 * time.Millisecond}
	if !write {
		opts.BufferSize = 1024
	}
	rec, err := metrics.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	if write {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rec.Run(ctx) }()
		b.Cleanup(func() { cancel(); <-done })
	}
	live, err := analytics.NewRealtime(analytics.RealtimeOptions{})
	if err != nil {
		b.Fatal(err)
	}
	_, secret, err := svc.Create(keys.CreateParams{Tier: "unlimited", Scopes: []string{"forms:read"}}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	up, _ := url.Parse("http://127.0.0.1:1")
	gw := gateway.New(gateway.Options{
		Gate: gateway.GateOptions{Engine: engine, Recorder: metrics.Tee{Recorder: rec, Live: live}, Observer: telemetry.New(),
			MaxHeaderBytes: 8 << 10, CountryHeader: "Cf-Ipcountry"},
		Proxy: gateway.ProxyOptions{Upstream: up},
	})
	return &decideWorld{gw: gw, secret: secret, rec: rec}
}

// inbound is a proxied GET of /api/forms/1 with the world's key, as
// api/fastedge gathers it.
func (w *decideWorld) inbound() gateway.ProxyInbound {
	return gateway.ProxyInbound{
		Inbound: gateway.Inbound{Method: "GET", Path: "/api/forms/1", Peer: netip.MustParseAddr("127.0.0.1"),
			RequestID: "0123456789abcdef0123456789abcdef", HeaderBytes: 200,
			Header: gateway.InboundHeader{APIKey: w.secret, UserAgent: "wrk"}},
		Target: "/api/forms/1", Host: "127.0.0.1:8080",
	}
}

// BenchmarkDecideProxy: the lean path's whole decision of a valid key,
// from a ProxyInbound through DecideProxy, the headers of the answer and
// of the upstream request, to Finish and the record (realtime view and
// recorder), as api/fastedge runs it; serially and from parallel callers.
func BenchmarkDecideProxy(b *testing.B) {
	w := newDecideWorld(b, true)
	once := func(resp, up *gateway.Fields, in *gateway.ProxyInbound) {
		call, a, ok := w.gw.DecideProxy(resp, up, in)
		if call == nil || !ok {
			b.Fatalf("refused: %d %s", a.Status, a.Body)
		}
		resp.Reset() // the lists let go of the call's values before it ends
		up.Reset()
		call.Finish(http.StatusOK, 42, time.Millisecond, "")
	}
	// Grow the recorder's buffers to what this rate needs first, as a
	// running server's are, so the figures are the steady state's.
	var resp, up gateway.Fields
	in := w.inbound()
	for range 100_000 {
		once(&resp, &up, &in)
	}
	b.Run("serial", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			once(&resp, &up, &in)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			var resp, up gateway.Fields
			in := w.inbound()
			for pb.Next() {
				once(&resp, &up, &in)
			}
		})
	})
	b.StopTimer()
	if st := w.rec.Stats(); st.Accepted == 0 {
		b.Fatalf("nothing recorded: %+v", st)
	}
}

// BenchmarkDecideAuthorize: /v1/authorize for a valid key from an
// Inbound, as both edges call Authorize: the decision, the answer's
// headers and the record, without the network.
func BenchmarkDecideAuthorize(b *testing.B) {
	w := newDecideWorld(b, true)
	in := w.inbound()
	in.Path, in.Header.OriginalURI = "/v1/authorize", "/api/forms/1"
	h := http.Header{}
	defer reportCPU(b)()
	for b.Loop() {
		if a := w.gw.Authorize(h, &in.Inbound); a.Status != http.StatusOK {
			b.Fatalf("status %d: %s", a.Status, a.Body)
		}
		clear(h)
	}
}

// reportCPU reports allocations and, when the returned function runs,
// the process's CPU time (user and system, every thread: the recorder's
// writer and the collector included) per operation. On a shared machine
// ns/op counts the time spent waiting for a core; cpu-ns/op does not.
func reportCPU(b *testing.B) func() {
	b.ReportAllocs()
	before := cpuTime(b)
	return func() {
		b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestDecideProxyAllocations: the lean path's decision and record of an
// allowed request allocate nothing, with the caller's request id or a
// new one: the header values are the pooled call's, the record's copies
// of the request's strings share slabs (BenchmarkDecideProxy has the
// figures).
func TestDecideProxyAllocations(t *testing.T) {
	if edgetest.RaceEnabled {
		t.Skip("the race detector changes what allocates")
	}
	w := newDecideWorld(t, false)
	for _, callerID := range []string{"0123456789abcdef0123456789abcdef", ""} {
		var resp, up gateway.Fields
		in := w.inbound()
		once := func() {
			in.RequestID = callerID // DecideProxy names the request in it
			call, a, ok := w.gw.DecideProxy(&resp, &up, &in)
			if call == nil || !ok {
				t.Fatalf("refused: %d %s", a.Status, a.Body)
			}
			resp.Reset()
			up.Reset()
			call.Finish(http.StatusOK, 42, time.Millisecond, "")
		}
		// The key's first verifications read bbolt until the cache admits
		// it, and the recorder's buffer fills: what a running server is past.
		for range 2000 {
			once()
		}
		if n := testing.AllocsPerRun(1000, once); n != 0 {
			t.Errorf("caller's id %q: %v allocations a request, want 0", callerID, n)
		}
	}
}
