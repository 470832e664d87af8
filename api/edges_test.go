package api_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/fastedge"
	"github.com/apiwarden/apiwarden/api/loopedge"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// forwardAuthEdges are the servers forward auth and check run on: the
// tests of /v1/authorize and /v1/check run on each. "" is the admin
// listener of proxy mode (gateConfig.edge ""); "net/http" and "fasthttp"
// serve the enforcement listener without a proxy (startEdge).
var forwardAuthEdges = []string{"", "net/http", "fasthttp"}

// proxyEdges are the servers the sidecar proxy runs on: the proxy tests
// run on each (onProxyEdges).
var proxyEdges = []string{"evloop", "fasthttp", "fasthttp, reduce_idle_memory", "net/http"}

// onProxyEdges runs test once per proxy edge, as a subtest named after it.
func onProxyEdges(t *testing.T, test func(t *testing.T, edge string)) {
	for _, edge := range proxyEdges {
		t.Run(edge, func(t *testing.T) { test(t, edge) })
	}
}

// defaultProxyEdge is the edge of the proxy tests that do not name one:
// evloop, the one config's edge "auto" picks for a proxy to an http://
// upstream with an admin listener of its own, or APIWARDEN_PROXY_EDGE
// (run the package with it set to "fasthttp" or "net/http" to run every
// proxy test on that edge).
func defaultProxyEdge() string {
	if e := os.Getenv("APIWARDEN_PROXY_EDGE"); e != "" {
		return e
	}
	return "evloop"
}

// fasthttpReads says whether fasthttp reads the edge's requests of other
// shapes than the lean one: on the fasthttp edges, and on evloop, which
// hands them to the fasthttp edge (api/loopedge).
func fasthttpReads(edge string) bool {
	return strings.HasPrefix(edge, "fasthttp") || edge == "evloop"
}

// edgeName names an edge in subtest names.
func edgeName(edge string) string {
	if edge == "" {
		return "admin listener"
	}
	return edge
}

// edgeServer is a listener a test calls.
type edgeServer struct {
	URL  string
	Addr string
	// shutdown drains the server as app.Run does on SIGTERM.
	shutdown func(ctx context.Context) error
}

// startEdge serves the enforcement listener of srv (the proxy, or
// forward auth and check) on the named edge over loopback, with the
// timeouts of edgeTimeouts.
func startEdge(t testing.TB, edge string, srv *api.Server) *edgeServer {
	t.Helper()
	switch edge {
	case "net/http":
		hs := httptest.NewUnstartedServer(nil)
		gs := srv.Gateway().HTTPServer(hs.Config) // as app.Run serves it
		hs.Config.ReadHeaderTimeout = edgeTimeouts.readHeader
		hs.Config.IdleTimeout = edgeTimeouts.idle
		hs.Config.MaxHeaderBytes = 2*edgeTimeouts.maxHeaderBytes + 4096
		hs.Start()
		t.Cleanup(hs.Close)
		return &edgeServer{URL: hs.URL, Addr: hs.Listener.Addr().String(), shutdown: gs.Shutdown}
	case "fasthttp", "fasthttp, reduce_idle_memory":
		fs := fastServer(srv, edge != "fasthttp")
		addr := edgetest.Serve(t, fs.Serve, fs.Close)
		return &edgeServer{URL: "http://" + addr, Addr: addr, shutdown: fs.Shutdown}
	case "evloop":
		ls, err := loopedge.New(loopedge.Options{Gateway: srv.Gateway(), MaxHeaderBytes: edgeTimeouts.maxHeaderBytes,
			Handoff: fastServer(srv, false), Timeouts: loopedge.Timeouts{ReadHeader: edgeTimeouts.readHeader,
				Idle: edgeTimeouts.idle, Write: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		addr := edgetest.Serve(t, ls.Serve, ls.Close)
		return &edgeServer{URL: "http://" + addr, Addr: addr, shutdown: ls.Shutdown}
	}
	t.Fatalf("no edge %q", edge)
	return nil
}

// fastServer is the fasthttp edge of srv with edgeTimeouts.
func fastServer(srv *api.Server, reduceIdleMemory bool) *fastedge.Server {
	return fastedge.New(fastedge.Options{Gateway: srv.Gateway(), Fallback: srv.EnforcementHandler(),
		MaxHeaderBytes: edgeTimeouts.maxHeaderBytes, ReadHeaderTimeout: edgeTimeouts.readHeader,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: edgeTimeouts.idle,
		ReduceIdleMemory: reduceIdleMemory})
}

// edgeTimeouts are the server settings of startEdge's servers.
var edgeTimeouts = struct {
	readHeader, idle time.Duration
	maxHeaderBytes   int
}{readHeader: 2 * time.Second, idle: time.Minute, maxHeaderBytes: 8 << 10}
