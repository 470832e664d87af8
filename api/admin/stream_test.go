package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
)

const streamToken = "stream-test-token"

// sseClient reads events from one /admin/v1/stream connection.
type sseClient struct {
	cancel context.CancelFunc
	events chan string // "retry: …", "snapshot <json>", "heartbeat"
	done   chan struct{}
}

func openStream(t *testing.T, url string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/admin/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+streamToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{cancel: cancel, events: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "retry: "):
				c.events <- line
			case line == ": heartbeat":
				c.events <- "heartbeat"
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && event != "":
				c.events <- event + " " + data
				event, data = "", ""
			}
		}
	}()
	return c
}

// next waits for the next event of the kind given ("snapshot",
// "heartbeat", "retry:").
func (c *sseClient) next(t *testing.T, kind string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-c.events:
			if strings.HasPrefix(e, kind) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within 5 s", kind)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestStreamServesTwoClientsAndSurvivesOneLeaving(t *testing.T) {
	clock := struct {
		sync.Mutex
		t time.Time
	}{t: time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC)}
	now := func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		return clock.t
	}
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{Now: now})
	for i := range 5 {
		rec := metrics.Record{Time: now().Add(-time.Duration(i+1) * time.Second), Method: "GET", Route: "/api/forms", Status: 200,
			Latency: 10 * time.Millisecond, KeyID: "key_1"}
		rt.Record(&rec)
	}
	srv := New(Options{AdminToken: streamToken, Now: now,
		Analytics: AnalyticsOptions{Realtime: rt, StreamInterval: 20 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond}})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	hub := srv.analytics.hub

	a, b := openStream(t, hs.URL), openStream(t, hs.URL)
	for _, c := range []*sseClient{a, b} {
		if e := c.next(t, "retry:"); e != "retry: 2000" {
			t.Fatalf("first line %q", e)
		}
		var snap struct {
			LastMinute struct {
				Requests int `json:"requests"`
			} `json:"last_minute"`
			Point  *struct{ Requests int } `json:"point"`
			Series []any                   `json:"series"`
		}
		e := c.next(t, "snapshot")
		if err := json.Unmarshal([]byte(strings.TrimPrefix(e, "snapshot ")), &snap); err != nil {
			t.Fatalf("%q: %v", e, err)
		}
		if snap.LastMinute.Requests != 5 || snap.Point == nil || snap.Point.Requests != 1 || snap.Series != nil {
			t.Fatalf("snapshot %s", e)
		}
		c.next(t, "heartbeat")
	}
	if n := hub.clients(); n != 2 {
		t.Fatalf("%d clients", n)
	}

	// One client leaves: its handler ends, the other keeps receiving, and
	// the snapshots follow the clock.
	a.cancel()
	<-a.done
	waitFor(t, "the first client to be unsubscribed", func() bool { return hub.clients() == 1 })
	clock.Lock()
	clock.t = clock.t.Add(2 * time.Minute)
	clock.Unlock()
	waitFor(t, "an empty snapshot after the clock moved", func() bool {
		return strings.Contains(b.next(t, "snapshot"), `"last_minute":{"requests":0,`)
	})

	// The last client leaves: the producer stops building snapshots.
	b.cancel()
	<-b.done
	waitFor(t, "no clients", func() bool { return hub.clients() == 0 })
	time.Sleep(50 * time.Millisecond)
	built := hub.built.Load()
	time.Sleep(100 * time.Millisecond)
	if hub.built.Load() != built {
		t.Error("snapshots are still built with nobody listening")
	}

	// CloseStreams ends open streams and refuses new ones.
	c := openStream(t, hs.URL)
	c.next(t, "snapshot")
	srv.CloseStreams()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream stayed open after CloseStreams")
	}
	req, _ := http.NewRequest("GET", hs.URL+"/admin/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+streamToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("stream after CloseStreams: %d", resp.StatusCode)
	}
}

// A client that never reads does not hold up the producer or the other
// clients: frames it cannot take are dropped for it alone.
func TestStreamHubNeverBlocksOnASlowClient(t *testing.T) {
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{})
	hub := newStreamHub(rt, time.Millisecond, time.Now, slog.New(slog.DiscardHandler))
	slow, fast := hub.subscribe(), hub.subscribe()
	defer hub.unsubscribe(slow)
	defer hub.unsubscribe(fast)
	got := 0
	for deadline := time.After(5 * time.Second); got < 50; {
		select {
		case <-fast.ch:
			got++
		case <-deadline:
			t.Fatalf("the fast client got %d frames", got)
		}
	}
	if slow.skipped.Load() == 0 || len(slow.ch) != streamBuffer {
		t.Errorf("slow client: %d skipped, %d queued", slow.skipped.Load(), len(slow.ch))
	}
}
