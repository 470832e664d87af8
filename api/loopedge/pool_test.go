package loopedge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// TestIdleClientsHoldNoUpstreamConnection: ten keep-alive clients of one
// loop, each served in turn and left open, share one upstream
// connection, taken from the loop's pool by each request and given back
// at its answer's end.
func TestIdleClientsHoldNoUpstreamConnection(t *testing.T) {
	up := edgetest.NewCountingUpstream(t, echo)
	addr, recs, _ := startLoops(t, up.URL, false, gateway.ProxyOptions{ResponseHeaderTimeout: 5 * time.Second,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 4}, 1)
	for i := range 10 {
		conn := edgetest.Dial(t, addr)
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://x/%d", i), nil)
		resp, body, err := roundTrip(t, conn, bufio.NewReader(conn), req)
		if err != nil || resp.StatusCode != 200 || string(body) != fmt.Sprintf("GET /%d ", i) {
			t.Fatalf("request %d: %v %q", i, err, body)
		}
	}
	if n := up.Conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for 10 clients served in turn, want 1", n)
	}
	edgetest.Poll(t, 10*time.Second, "10 records", func() bool { return len(recs.All()) == 10 })
}

// heldUpstream sends each answer's head at once and its body once
// release lets it, and counts the requests it has read and holds: a
// request holds its slot to its answer's end, and response_header_timeout
// does not end it.
type heldUpstream struct {
	*edgetest.CountingUpstream
	release      chan struct{}
	read, inside atomic.Int64
	most         atomic.Int64 // the most requests held at once
}

func newHeldUpstream(t *testing.T) *heldUpstream {
	h := &heldUpstream{release: make(chan struct{})}
	h.CountingUpstream = edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h.read.Add(1)
		n := h.inside.Add(1)
		for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
		}
		defer h.inside.Add(-1)
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-h.release:
			io.WriteString(w, "ok")
		case <-r.Context().Done():
		}
	})
	return h
}

// fetch GETs url and returns the answer's status and body, 0 on an error.
func fetch(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSlotsAcrossLoops: max_conns_per_host bounds the requests in flight
// over all the loops, and a slot given back on one loop goes to a
// request waiting on another: with requests released one at a time,
// each waiting one gets in, never more than the bound at once, over
// connections that go with the slots.
func TestSlotsAcrossLoops(t *testing.T) {
	up := newHeldUpstream(t)
	const limit, requests = 3, 16
	addr, recs, _ := startLoops(t, up.URL, false, gateway.ProxyOptions{ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 8, MaxConnsPerHost: limit}, 4)
	errs := make(chan error, requests)
	for i := range requests {
		go func() {
			var err error
			if code, body := fetch(fmt.Sprintf("http://%s/%d", addr, i)); code != 200 || body != "ok" {
				err = fmt.Errorf("%d %q", code, body)
			}
			errs <- err
		}()
	}
	for left := requests; left > 0; left-- {
		edgetest.Poll(t, 10*time.Second, "the bound's worth of requests upstream", func() bool { return up.inside.Load() == min(limit, int64(left)) })
		up.release <- struct{}{}
	}
	for range requests {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if m := up.most.Load(); m != limit {
		t.Errorf("%d requests upstream at once, want %d", m, limit)
	}
	edgetest.Poll(t, 10*time.Second, "the records", func() bool { return len(recs.All()) == requests })
}

// TestSlotWaitTimesOut: a request that waits for a slot longer than
// response_header_timeout is answered 504 without reaching the upstream,
// while the request before it holds the only slot; the slot is not lost
// to the wait.
func TestSlotWaitTimesOut(t *testing.T) {
	up := newHeldUpstream(t)
	addr, recs, _ := startLoops(t, up.URL, false, gateway.ProxyOptions{ResponseHeaderTimeout: 300 * time.Millisecond,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 2, MaxConnsPerHost: 1}, 2)
	held := make(chan int, 1)
	go func() {
		code, _ := fetch("http://" + addr + "/held")
		held <- code
	}()
	edgetest.Poll(t, 10*time.Second, "the first request upstream", func() bool { return up.read.Load() == 1 })
	resp := edgetest.Get(t, addr, "/waits")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("a request waiting for a slot: %d, want 504", resp.StatusCode)
	}
	if n := up.read.Load(); n != 1 {
		t.Errorf("the upstream read %d requests, want 1: the second waited", n)
	}
	close(up.release)
	if code := <-held; code != 200 {
		t.Errorf("the held request: %d, want 200", code)
	}
	if resp := edgetest.Get(t, addr, "/after"); resp.StatusCode != 200 {
		t.Errorf("after the timeouts: %d, want 200", resp.StatusCode)
	}
	edgetest.Poll(t, 10*time.Second, "3 records", func() bool { return len(recs.All()) == 3 })
}

// TestClientLeavesWhileWaiting: a client that closes its connection while
// its request waits for a slot leaves the queue; the slot goes to the
// next request, and the one that left is recorded once.
func TestClientLeavesWhileWaiting(t *testing.T) {
	up := newHeldUpstream(t)
	addr, recs, s := startLoops(t, up.URL, false, gateway.ProxyOptions{ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 2, MaxConnsPerHost: 1}, 2)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan int, 1)
	wg.Go(func() {
		code, _ := fetch("http://" + addr + "/first")
		first <- code
	})
	edgetest.Poll(t, 10*time.Second, "the first request upstream", func() bool { return up.read.Load() == 1 })
	wg.Go(func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/leaves", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	edgetest.Poll(t, 10*time.Second, "a request waiting", func() bool { return s.slots.waiting.Load() == 1 })
	cancel() // closes its connection
	edgetest.Poll(t, 10*time.Second, "no request waiting", func() bool { return s.slots.waiting.Load() == 0 })
	up.release <- struct{}{}
	if code := <-first; code != 200 {
		t.Fatalf("the first request: %d", code)
	}
	go func() { up.release <- struct{}{} }()
	if resp := edgetest.Get(t, addr, "/next"); resp.StatusCode != 200 {
		t.Errorf("the next request: %d, want 200", resp.StatusCode)
	}
	if n := up.read.Load(); n != 2 {
		t.Errorf("the upstream read %d requests, want 2", n)
	}
	edgetest.Poll(t, 10*time.Second, "3 records", func() bool { return len(recs.All()) == 3 })
	if n := len(recs.All()); n != 3 {
		t.Errorf("%d records, want 3", n)
	}
}

// BenchmarkSlots is what max_conns_per_host costs a request under the
// bound: a slot taken and given back, from every CPU at once.
func BenchmarkSlots(b *testing.B) {
	s := &slots{limit: gateway.DefaultMaxConnsPerHost}
	l := &loop{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.take(l) {
				b.Fatal("no slot under the bound")
			}
			s.give(l, -1)
		}
	})
}
