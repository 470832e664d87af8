package loopedge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// TestIdleConnectionsHoldNoBuffers: a keep-alive connection served once
// and left idle holds no read or write buffer. The Go heap a connection
// adds, client side included, stays under 16 KiB (one 16 KiB read
// buffer a side held 35 KiB).
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	if perConn := idleHeap(t, 1000); perConn > 16<<10 {
		t.Errorf("%.0f bytes of heap an idle connection, want under 16 KiB", perConn)
	}
}

// BenchmarkIdleConnectionHeap reports the Go heap in use per idle
// keep-alive connection (idle-heap-B/conn): 2,000 clients each served
// one request and left open. Client and server share the process, so
// the figure includes each client's socket.
func BenchmarkIdleConnectionHeap(b *testing.B) {
	b.ReportAllocs()
	var perConn float64
	for range b.N {
		perConn += idleHeap(b, 2000)
	}
	b.ReportMetric(perConn/float64(b.N), "idle-heap-B/conn")
}

// idleHeap serves n clients one request each through the loops, and
// returns the heap in use they add while they stay open, a connection.
func idleHeap(tb testing.TB, n int) float64 {
	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	addr, _, s := startLoops(tb, up.URL, false, gateway.ProxyOptions{ResponseHeaderTimeout: 5 * time.Second,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 8}, 0)
	defer s.Close()
	req := []byte("GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
	before := heapInUse()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatal(err)
		}
		conns[i] = c
		if _, err := c.Write(req); err != nil {
			tb.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			tb.Fatal(resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	perConn := float64(heapInUse()-before) / float64(n)
	for _, c := range conns {
		c.Close()
	}
	return perConn
}

// heapInUse is the heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
