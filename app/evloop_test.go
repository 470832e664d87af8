package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// TestEventLoopEdgeKeepsAPSpare: on the evloop edge the program runs
// with one P more than its loops (one a CPU), so that what the loops
// wake (the recorder, the key cache's policy) does not wait for a loop to
// be preempted (api/loopedge/procs.go).
func TestEventLoopEdgeKeepsAPSpare(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before) // a setting of the whole test binary
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	a, stop := startApp(t, func(c *config.Config) {
		c.Proxy.Upstream = up.URL
		c.Server.Edge = config.EdgeEvLoop
		c.Routes = []config.Route{{Path: "/*", Preset: "public"}}
	})
	defer stop()
	resp, err := http.Get("http://" + a.Addr() + "/a")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("through the loops: %v %v", resp, err)
	}
	resp.Body.Close()
	if loops, p := min(before, runtime.NumCPU()), runtime.GOMAXPROCS(0); p <= loops {
		t.Errorf("GOMAXPROCS %d with %d loops, want one P spare", p, loops)
	}
}
