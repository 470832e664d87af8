package fastedge

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// A server stopped before Serve runs must not serve: app.Run calls
// Shutdown as soon as its context ends, which can be before the goroutine
// that calls Serve has started (a SIGTERM at start). fasthttp alone only
// stops listeners it already serves, so Serve would run for ever.
func TestServeAfterStopReturns(t *testing.T) {
	routes, err := enforce.NewRoutes(nil, enforce.Route{Preset: enforce.Internal})
	if err != nil {
		t.Fatal(err)
	}
	engine := enforce.NewEngine(nil, nil, enforce.Policy{Routes: routes})
	upstream, _ := url.Parse("http://127.0.0.1:9")
	stops := map[string]func(*Server) error{
		"Shutdown": func(s *Server) error { return s.Shutdown(context.Background()) },
		"Close":    (*Server).Close,
	}
	for _, mode := range []string{"forward auth", "proxy"} {
		for name, stop := range stops {
			t.Run(mode+"/"+name, func(t *testing.T) {
				o := gateway.Options{Gate: gateway.GateOptions{Engine: engine, Recorder: &edgetest.Records{}}}
				if mode == "proxy" {
					o.Proxy = gateway.ProxyOptions{Upstream: upstream, ResponseHeaderTimeout: time.Second}
				}
				gw := gateway.New(o)
				s := New(Options{Gateway: gw, Fallback: http.NotFoundHandler(), MaxHeaderBytes: 8 << 10,
					ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second})
				if err := stop(s); err != nil {
					t.Fatal(err)
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				served := make(chan error, 1)
				go func() { served <- s.Serve(ln) }()
				select {
				case err := <-served:
					if err != nil {
						t.Fatalf("Serve after %s: %v", name, err)
					}
				case <-time.After(10 * time.Second):
					s.Close()
					t.Fatalf("Serve still running 10 s after %s", name)
				}
				if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
					c.Close()
					t.Fatal("the listener still accepts after Serve returned")
				}
			})
		}
	}
}
