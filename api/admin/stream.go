package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/julienschmidt/httprouter"
)

// Stream timing.
const (
	defaultStreamInterval = time.Second
	streamRetryMillis     = 2000             // the "retry:" the stream opens with
	streamWriteTimeout    = 10 * time.Second // a client that takes longer for one event is dropped
	streamBuffer          = 2                // events a client may fall behind before it skips
)

// streamHub builds one snapshot frame per interval and hands it to every
// subscribed client with a non-blocking send into the client's small
// buffer; a client whose buffer is full loses its oldest frame instead
// of holding anyone up. The producer runs only while someone listens: the
// first subscriber starts it, the last one to leave stops it.
type streamHub struct {
	src      RealtimeSource
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	subs    map[*streamSub]struct{}
	stop    chan struct{} // closes the running producer; nil when none runs
	last    []byte        // the newest frame, for a client that joins
	closed  bool
	closing chan struct{} // closed by close: every stream ends
	built   atomic.Uint64 // frames built, for tests
}

// streamSub is one client's end.
type streamSub struct {
	ch      chan []byte
	skipped atomic.Uint64
}

func newStreamHub(src RealtimeSource, interval time.Duration, now func() time.Time, log *slog.Logger) *streamHub {
	if interval <= 0 {
		interval = defaultStreamInterval
	}
	return &streamHub{src: src, interval: interval, now: now, log: log,
		subs: make(map[*streamSub]struct{}), closing: make(chan struct{})}
}

// subscribe adds a client; it returns nil once the hub is closed.
func (h *streamHub) subscribe() *streamSub {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	sub := &streamSub{ch: make(chan []byte, streamBuffer)}
	h.subs[sub] = struct{}{}
	if h.last != nil {
		sub.ch <- h.last
	}
	if h.stop == nil {
		h.stop = make(chan struct{})
		go h.produce(h.stop)
	}
	return sub
}

// unsubscribe removes a client and stops the producer after the last.
func (h *streamHub) unsubscribe(sub *streamSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
	if len(h.subs) == 0 && h.stop != nil {
		close(h.stop)
		h.stop, h.last = nil, nil
	}
}

// clients returns the number of subscribed clients.
func (h *streamHub) clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// close ends every stream and refuses new ones.
func (h *streamHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.closing)
	}
}

func (h *streamHub) produce(stop chan struct{}) {
	ticker := time.NewTicker(h.interval)
	defer ticker.Stop()
	for {
		frame, err := h.frame()
		if err != nil {
			h.log.Error("stream: building a snapshot failed", "err", err)
		} else {
			h.broadcast(stop, frame)
		}
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
	}
}

// frame builds one server-sent event: the realtime answer without the
// series but with the last complete second as "point".
func (h *streamHub) frame() ([]byte, error) {
	snap := h.src.Snapshot(h.now(), false)
	var buf bytes.Buffer
	buf.WriteString("event: snapshot\ndata: ")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(snap); err != nil { // Encode ends with "\n"
		return nil, err
	}
	buf.WriteString("\n")
	h.built.Add(1)
	return buf.Bytes(), nil
}

func (h *streamHub) broadcast(stop chan struct{}, frame []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-stop:
		return // stopped while building; the frame is nobody's
	default:
	}
	h.last = frame
	for sub := range h.subs {
		select {
		case sub.ch <- frame:
			continue
		default:
		}
		// Full: the client is behind. Drop its oldest frame so the newest
		// gets through, never waiting for it.
		select {
		case <-sub.ch:
			sub.skipped.Add(1)
		default:
		}
		select {
		case sub.ch <- frame:
		default:
			sub.skipped.Add(1)
		}
	}
}

// CloseStreams ends every open /admin/v1/stream response and refuses new
// ones (503). Call it when shutting down (http.Server.RegisterOnShutdown):
// a stream never ends by itself, and Shutdown waits for open responses.
func (s *Server) CloseStreams() {
	if s.analytics != nil && s.analytics.hub != nil {
		s.analytics.hub.close()
	}
}

// stream serves GET /admin/v1/stream: "retry: 2000" first, then one
// "event: snapshot" a second and a ": heartbeat" comment every 15 s,
// until the client goes away or CloseStreams.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	if s.analytics == nil || s.analytics.hub == nil {
		return httpapi.Errorf(httpapi.CodeUnavailable, "the live stream is not enabled on this server")
	}
	hub := s.analytics.hub
	sub := hub.subscribe()
	if sub == nil {
		return httpapi.Errorf(httpapi.CodeUnavailable, "the server is shutting down")
	}
	defer hub.unsubscribe(sub)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		err := rc.Flush()
		return err == nil || errors.Is(err, http.ErrNotSupported)
	}
	if !send([]byte("retry: " + strconv.Itoa(streamRetryMillis) + "\n\n")) {
		return nil
	}
	beat := time.NewTicker(s.analytics.beat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-hub.closing:
			return nil
		case frame := <-sub.ch:
			if !send(frame) {
				return nil
			}
		case <-beat.C:
			if !send([]byte(": heartbeat\n\n")) {
				return nil
			}
		}
	}
}
