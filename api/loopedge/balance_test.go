package loopedge

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// TestConnectionsSpreadOverLoops: the loops serve the connections in
// turn, whichever loop accepted them, so that no loop serves more than
// one connection more than another.
func TestConnectionsSpreadOverLoops(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	addr, _, s := startLoops(t, up.URL, false, gateway.ProxyOptions{ResponseHeaderTimeout: 5 * time.Second}, 2)
	const conns = 20
	for i := range conns { // one after another, each served before the next
		conn := edgetest.Dial(t, addr)
		req, _ := http.NewRequest("GET", "http://x/", nil)
		if resp, _, err := roundTrip(t, conn, bufio.NewReader(conn), req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp.Status, err)
		}
	}
	s.Close() // the loops have ended: their counts are safe to read
	for i, l := range s.running {
		if l.clients != conns/len(s.running) {
			t.Errorf("loop %d served %d of %d connections, want %d", i, l.clients, conns, conns/len(s.running))
		}
	}
}
