package loopedge

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// TestConnectionsSpreadOverLoops: the loops serve the connections in
// turn, whichever loop accepted them, so that no loop serves more than
// one connection more than another.
func TestConnectionsSpreadOverLoops(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	s := newProxy(t, up.URL, false, &edgetest.Records{})
	s.loops = 2
	addr := edgetest.Serve(t, s.Serve, s.Close)
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
		if l.adopted != conns/len(s.running) {
			t.Errorf("loop %d served %d of %d connections, want %d", i, l.adopted, conns, conns/len(s.running))
		}
	}
}
