package loopedge

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// TestLoopsLeaveAProcessorSpare: a busy loop holds its P, so a serving
// server keeps GOMAXPROCS above its number of loops for every other
// goroutine; and a second server in the same process takes as many loops
// as the first, not one more for the P the first added.
func TestLoopsLeaveAProcessorSpare(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	loops := defaultLoops()
	for i := range 2 {
		addr, _ := startProxy(t, up.URL)
		if resp := edgetest.Get(t, addr, "/"); resp.StatusCode != 200 { // the loops run
			t.Fatalf("server %d: status %d", i, resp.StatusCode)
		}
		if p := runtime.GOMAXPROCS(0); p <= loops {
			t.Errorf("server %d: GOMAXPROCS %d with %d loops, want one P spare", i, p, loops)
		}
		if got := defaultLoops(); got != loops {
			t.Errorf("server %d: %d loops by default, want %d", i, got, loops)
		}
	}
}
