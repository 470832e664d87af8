package app_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// A configuration built in code, which skips config validation, cannot
// put the fasthttp edge where it would serve the admin routes either.
func TestFastHTTPEdgeOnlyOnItsOwnListener(t *testing.T) {
	for name, mutate := range map[string]func(*config.Config){
		// Equal addresses but port 0 are two listeners (tests use them).
		"on a shared listener": func(c *config.Config) { c.Server.Listen, c.Server.AdminListen = "127.0.0.1:38999", "127.0.0.1:38999" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Server.Listen, cfg.Server.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
			cfg.Server.DataDir = t.TempDir()
			cfg.Security.AdminToken, cfg.Security.KeySecret = "tok", "edge-test-secret-0123456789"
			cfg.Server.Edge = config.EdgeFastHTTP
			mutate(cfg)
			_, err := app.New(cfg, app.Options{})
			if err == nil {
				t.Fatal("app.New accepted the fasthttp edge")
			}
			if !strings.Contains(err.Error(), `server.edge "fasthttp"`) {
				t.Fatalf("error %q does not name server.edge", err)
			}
		})
	}
}

// Forward auth and check count in /metrics and land in the data file the
// same way on either edge.
func TestForwardAuthCountedAndRecordedOnEitherEdge(t *testing.T) {
	for _, edge := range []string{config.EdgeNetHTTP, config.EdgeFastHTTP} {
		t.Run(edge, func(t *testing.T) {
			a, _ := startApp(t, func(c *config.Config) {
				c.Server.Edge = edge
				c.Routes = []config.Route{{Path: "/public/*", Preset: "public"}}
				c.Security.MetricsToken = "scrape"
			})
			for _, uri := range []string{"/public/a", "/public/b"} {
				if got := call(t, "GET", "http://"+a.Addr()+"/v1/authorize", map[string]string{"X-Original-URI": uri}, ""); got.status != 200 {
					t.Fatalf("authorize %s: %d %s", uri, got.status, got.body)
				}
			}
			if got := call(t, "POST", "http://"+a.Addr()+"/v1/check", map[string]string{"Content-Type": "application/json"}, `{"path":"/private"}`); got.status != 200 {
				t.Fatalf("check: %d %s", got.status, got.body)
			}
			families := waitFlushed(t, a, 3)
			counts := decisionCounts(families)
			if counts["VALID /public/* free"] != 2 || counts["MISSING_KEY * "] != 1 {
				t.Fatalf("decision counts %v", counts)
			}
			entries := entryCounts(families)
			if entries["authorize"] != 2 || entries["check"] != 1 {
				t.Fatalf("latency observations by entry %v", entries)
			}
		})
	}
}

// The proxy counts in /metrics and lands in the data file the same way on
// either edge: a lean request, one handed to net/http (a chunked body)
// and a denial.
func TestProxyCountedAndRecordedOnEitherEdge(t *testing.T) {
	for _, edge := range []string{config.EdgeNetHTTP, config.EdgeFastHTTP, config.EdgeEvLoop} {
		t.Run(edge, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s %d", r.URL.Path, len(b))
			}))
			t.Cleanup(up.Close)
			a, _ := startApp(t, func(c *config.Config) {
				c.Server.Edge = edge
				c.Proxy.Upstream = up.URL
				c.Routes = []config.Route{{Path: "/public/*", Preset: "public"}}
				c.Security.MetricsToken = "scrape"
			})
			base := "http://" + a.Addr()
			if got := call(t, "GET", base+"/public/a", nil, ""); got.status != 200 || got.body != "/public/a 0" {
				t.Fatalf("lean: %d %s", got.status, got.body)
			}
			req, _ := http.NewRequest("POST", base+"/public/b", io.MultiReader(strings.NewReader("chunked "), strings.NewReader("body")))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "/public/b 12" || req.ContentLength != 0 {
				t.Fatalf("chunked: %d %s", resp.StatusCode, b)
			}
			if got := call(t, "GET", base+"/private", nil, ""); got.status != 401 {
				t.Fatalf("denial: %d %s", got.status, got.body)
			}
			families := waitFlushed(t, a, 3)
			counts := decisionCounts(families)
			if counts["VALID /public/* free"] != 2 || counts["MISSING_KEY * "] != 1 {
				t.Fatalf("decision counts %v", counts)
			}
			entries := entryCounts(families)
			if entries["proxy"] != 3 {
				t.Fatalf("latency observations by entry %v", entries)
			}
		})
	}
}

// When Run stops, the proxy's idle upstream connections close with it,
// on either edge: the upstream sees the connection of a request close.
func TestRunClosesIdleUpstreamConnectionsOnEitherEdge(t *testing.T) {
	for _, edge := range []string{config.EdgeNetHTTP, config.EdgeFastHTTP, config.EdgeEvLoop} {
		t.Run(edge, func(t *testing.T) {
			var conns, closed atomic.Int64
			up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
			up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				switch s {
				case http.StateNew:
					conns.Add(1)
				case http.StateClosed:
					closed.Add(1)
				}
			}
			up.Start()
			t.Cleanup(up.Close)
			a, stop := startApp(t, func(c *config.Config) {
				c.Server.Edge = edge
				c.Proxy.Upstream = up.URL
				c.Routes = []config.Route{{Path: "/public/*", Preset: "public"}}
			})
			if got := call(t, "GET", "http://"+a.Addr()+"/public/a", nil, ""); got.status != 200 || got.body != "ok" {
				t.Fatalf("%d %s", got.status, got.body)
			}
			stop()
			for deadline := time.Now().Add(10 * time.Second); closed.Load() < conns.Load(); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d upstream connections closed 10 s after Run returned", closed.Load(), conns.Load())
				}
			}
		})
	}
}

// waitFlushed polls /metrics until n records are flushed to the data
// file, and returns what it read then.
func waitFlushed(t *testing.T, a *app.App, n float64) map[string]*dto.MetricFamily {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		families := scrapeMetrics(t, a.AdminAddr(), "scrape")
		flushed := 0.0
		for _, m := range families["apiwarden_metrics_records_total"].GetMetric() {
			if m.GetLabel()[0].GetValue() == "flushed" {
				flushed = m.GetCounter().GetValue()
			}
		}
		if flushed == n {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("records flushed %v, want %v", flushed, n)
		}
	}
}

// entryCounts counts the latency observations by entry point.
func entryCounts(families map[string]*dto.MetricFamily) map[string]uint64 {
	entries := map[string]uint64{}
	for _, m := range families["apiwarden_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "entry" {
				entries[l.GetValue()] += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return entries
}

// The default edge, "auto", serves listen on fasthttp when the admin
// routes have a listener of their own, and the log says which.
func TestDefaultEdgeIsLogged(t *testing.T) {
	// A shared listener needs one fixed address: a port the kernel just
	// gave out and took back, rather than one named here, which another
	// test's listener may hold.
	shared := edgetest.FreeAddr(t)
	for _, tc := range []struct {
		name, listen, admin, want string
		fasthttp                  bool
	}{
		{"own listener", "127.0.0.1:0", "127.0.0.1:0", `listener=enforcement addr=127.0.0.1:`, true},
		{"shared listener", shared, shared, `listener=admin addr=` + shared + ` edge=net/http`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Server.Listen, cfg.Server.AdminListen = tc.listen, tc.admin
			cfg.Server.DataDir = t.TempDir()
			cfg.Security.AdminToken, cfg.Security.KeySecret = "tok", "edge-test-secret-0123456789"
			log := startAndStopLog(t, cfg)
			if !strings.Contains(log, tc.want) {
				t.Fatalf("no %q in the log:\n%s", tc.want, log)
			}
			enforcement := strings.Contains(log, "listener=enforcement")
			if fast := strings.Contains(log, "edge=fasthttp"); fast != tc.fasthttp || enforcement != tc.fasthttp {
				t.Fatalf("fasthttp %v, enforcement listener %v, want both %v:\n%s", fast, enforcement, tc.fasthttp, log)
			}
		})
	}
}
