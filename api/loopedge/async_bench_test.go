package loopedge

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// opaqueDecider is the enforce.Engine behind a Decider the gateway does
// not know, so that it says its decisions may wait: what a decision off
// the loop costs, without the wait.
type opaqueDecider struct{ *enforce.Engine }

// BenchmarkProxyDecision is a keep-alive GET through one loop, its
// decision made on the loop or off it (a goroutine, the completion queue
// and the loop's wake fd): the difference is the hand-off's cost. ns/op
// is wall time with the client and upstream on the same CPUs; the
// figures are in docs/BENCHMARKS.md, "The event-loop edge with Redis
// (thirteenth session)".
func BenchmarkProxyDecision(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	routes, err := enforce.NewRoutes(nil, enforce.Route{Preset: enforce.Internal})
	if err != nil {
		b.Fatal(err)
	}
	engine := enforce.NewEngine(nil, nil, enforce.Policy{Routes: routes})
	for _, tc := range []struct {
		name    string
		decider gateway.Decider
	}{{"on the loop", engine}, {"off the loop", opaqueDecider{engine}}} {
		b.Run(tc.name, func(b *testing.B) {
			o := gateway.ProxyOptions{ResponseHeaderTimeout: 5 * time.Second}
			o.Upstream, _ = url.Parse(up.URL)
			gw := gateway.New(gateway.Options{Gate: gateway.GateOptions{Engine: tc.decider, MaxHeaderBytes: 8 << 10}, Proxy: o})
			s, err := New(Options{Gateway: gw, MaxHeaderBytes: 8 << 10, Loops: 1})
			if err != nil {
				b.Fatal(err)
			}
			if s.mayWait != (tc.name == "off the loop") {
				b.Fatalf("decisions off the loop: %v", s.mayWait)
			}
			addr := edgetest.Serve(b, s.Serve, s.Close)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				conn := edgetest.Dial(b, addr)
				conn.SetDeadline(time.Time{})
				br := bufio.NewReader(conn)
				for pb.Next() {
					if _, err := io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: app.example\r\n\r\n"); err != nil {
						b.Error(err)
						return
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
