package api_test

import (
	"bufio"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// With reduce_idle_memory, a keep-alive connection waiting on the
// fasthttp proxy holds no read buffer: the heap grows by less per open
// connection than the buffer alone (max_header_bytes + 4 KiB, 12 KiB
// here). In stream mode fasthttp v1.79 kept that buffer for a
// connection's life (api/fastedge/defer.go), whatever the setting.
func TestProxyIdleConnectionsHoldNoReadBuffer(t *testing.T) {
	f := newGateFixture(t, gateConfig{proxyEdge: "fasthttp, reduce_idle_memory"})
	request := []byte("GET /api/forms/1 HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + f.secrets["bench"] + "\r\n\r\n")
	const n = 256
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	exchange := func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(request); err != nil {
			t.Fatal(err)
		}
		// A reader per exchange, dropped after it: the client keeps no
		// buffer of its own per connection either.
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 256), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// One connection first, so that what every connection shares (the
	// upstream connection, pools, the key cache) is there before counting.
	warm := edgetest.Dial(t, f.proxy.Addr)
	exchange(warm)
	before := liveHeap()
	for range n {
		c := edgetest.Dial(t, f.proxy.Addr)
		conns = append(conns, c)
		exchange(c)
	}
	// Signed: other tests' servers, shutting down in the background, may
	// free more than these connections hold.
	perConn := float64(liveHeap()-before) / n
	t.Logf("live heap per idle connection, server and client side: %.0f bytes", perConn)
	if buffer := edgeTimeouts.maxHeaderBytes + 4096; perConn >= float64(buffer) {
		t.Errorf("each idle connection holds %.0f bytes of heap, a read buffer (%d) or more", perConn, buffer)
	}
}

// liveHeap is the heap in use by live objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
