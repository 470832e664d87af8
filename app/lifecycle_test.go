package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// SIGTERM (the context ending) lets slow in-flight requests finish and
// records every one of them before the data file closes.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	arrived := make(chan struct{}, 5)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(400 * time.Millisecond)
		io.WriteString(w, "slow but fine")
	}))
	defer up.Close()
	var dataDir string
	a, stop := startApp(t, func(c *config.Config) {
		c.Proxy.Upstream = up.URL
		c.RoutesDefault.Preset = "internal"
		c.Metrics.InternalSampleRate = 1
		dataDir = c.Server.DataDir
	})
	var wg sync.WaitGroup
	statuses := make(chan int, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + a.Addr() + "/slow")
			if err != nil {
				statuses <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range 5 { // every request is upstream, in flight, before the shutdown
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the requests did not reach the upstream")
		}
	}
	stop()
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 200 {
			t.Fatalf("an in-flight request got %d during shutdown", s)
		}
	}
	st, err := store.Open(dataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sum, err := metrics.NewReader(st).Sum(context.Background(), metrics.CellQuery{Interval: metrics.Hourly, Dimension: metrics.DimTotal})
	if err != nil || sum.Count != 5 {
		t.Fatalf("recorded %d requests (%v), want all 5", sum.Count, err)
	}
}

// With shutdown_delay the instance answers /readyz 503 but keeps serving
// until the delay has passed.
func TestShutdownDelayKeepsServingWhileUnready(t *testing.T) {
	// A long delay, so that a loaded machine still sees the window; the
	// test waits only until /readyz turns, then for the stop.
	a, stop := startApp(t, func(c *config.Config) { c.Server.ShutdownDelay = config.Duration(2 * time.Second) })
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	get := func(path string) int {
		resp, err := http.Get("http://" + a.AdminAddr() + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(time.Second)
	for get("/readyz") != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not turn 503 during the delay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := get("/healthz"); got != 200 {
		t.Fatalf("/healthz during the delay: %d, want 200 (still serving)", got)
	}
	<-stopped
	if got := get("/healthz"); got != 0 {
		t.Fatalf("/healthz after shutdown: %d, want a refused connection", got)
	}
}
