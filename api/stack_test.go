package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// A keep-alive connection of the fasthttp proxy costs one pooled worker
// goroutine, whose stack keeps the largest size a request grew it to
// while the connection idles. A proxied request with a key and a limit
// (the deepest lean path: the decision down to the limiter's shard, the
// upstream write down to fasthttp's header encoding) must fit in a 4 KiB
// stack, so 10,000 idle connections hold about 40 MiB of stacks, not 80
// (docs/BENCHMARKS.md, "Stacks per connection on the fasthttp proxy").
// The figure is the runtime's stacks in use over the connections opened,
// each answered once and left open; the test's own side runs on its one
// goroutine.
//
// Not under the race detector: its stack guard is 1,728 bytes, not 928,
// and its frames are larger (fasthttp's serveConnCounted 1,264 bytes, not
// 872), so fasthttp's own read deadline, before the handler runs, already
// needs more than a 4 KiB stack.
func TestProxyStackPerIdleConnection(t *testing.T) {
	if edgetest.RaceEnabled {
		t.Skip("the race detector's stacks are not the program's")
	}
	const conns = 400
	// The product's response_header_timeout: the upstream connection then
	// sets a read deadline at each write (fastedge's headerConn).
	f := newGateFixture(t, gateConfig{proxyEdge: "fasthttp", headerTimout: 30 * time.Second})
	request := "GET /api/forms/1 HTTP/1.1\r\nHost: app.test\r\nX-API-Key: " + f.secrets["bench"] + "\r\n\r\n"
	get := func(c net.Conn, r *bufio.Reader) {
		t.Helper()
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	first := edgetest.Dial(t, f.proxy.Addr) // the upstream connection, the key's cache entry
	get(first, bufio.NewReader(first))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	open := make([]net.Conn, 0, conns)
	for range conns {
		c := edgetest.Dial(t, f.proxy.Addr)
		get(c, bufio.NewReader(c))
		open = append(open, c)
	}
	runtime.ReadMemStats(&after)
	perConn := float64(int64(after.StackInuse)-int64(before.StackInuse)) / conns / 1024
	t.Logf("%.2f KiB of stacks per idle connection (%d connections)", perConn, conns)
	if perConn > 6 {
		t.Errorf("%.2f KiB of stacks per idle connection; want about 4 (a worker grown to 8 KiB by its request)", perConn)
	}
	for _, c := range open {
		c.Close()
	}
}
