package loopedge

import (
	"runtime"
	"testing"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// TestSparePLeavesAProcessorSpare: a busy loop holds its P, so SpareP
// keeps GOMAXPROCS above the server's loops for every other goroutine;
// and a second server in the same process takes as many loops as the
// first, not one more for the P the first added.
func TestSparePLeavesAProcessorSpare(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // a setting of the whole test binary
	loops := defaultLoops()
	for i := range 2 {
		s := newProxy(t, "http://127.0.0.1:1", false, &edgetest.Records{}, gateway.ProxyOptions{}, 0)
		if s.loops != loops {
			t.Errorf("server %d: %d loops by default, want %d", i, s.loops, loops)
		}
		if p := s.SpareP(); p <= s.loops || runtime.GOMAXPROCS(0) != p {
			t.Errorf("server %d: SpareP %d, GOMAXPROCS %d with %d loops, want one P spare", i, p, runtime.GOMAXPROCS(0), s.loops)
		}
	}
}
