package gateway_test

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// A handler still running when the server is closed (Close does not wait
// for it) leaves no upstream connection open once it ends: it would go
// back to the idle pool after Close emptied it, and stay there until the
// process exits. The answer is a stream, so the client has its first
// line, and the handler is past the upstream's head, before the Close.
func TestCloseLeavesNoUpstreamConnectionOfARunningHandler(t *testing.T) {
	release := make(chan struct{})
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		<-release
		w.Write([]byte("data: last\n\n"))
	})
	routes, err := enforce.NewRoutes(nil, enforce.Route{Preset: enforce.Internal})
	if err != nil {
		t.Fatal(err)
	}
	upstream, _ := url.Parse(up.URL)
	gw := gateway.New(gateway.Options{
		Gate:  gateway.GateOptions{Engine: enforce.NewEngine(nil, nil, enforce.Policy{Routes: routes})},
		Proxy: gateway.ProxyOptions{Upstream: upstream, DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second, IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 4},
	})
	srv := gw.HTTPServer(&http.Server{})
	addr := edgetest.Serve(t, srv.Serve, srv.Close)

	br := bufio.NewReader(edgetest.SendGet(t, addr, "/events"))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: first") {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	close(release) // the handler reads the rest of the answer and ends
	edgetest.Poll(t, 10*time.Second, "no upstream connection open after the handler ended", func() bool { return up.Open() == 0 })
}
