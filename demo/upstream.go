package demo

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// UpstreamOptions configure NewUpstream. The zero value is ready to use.
type UpstreamOptions struct {
	// Seed makes the answers reproducible; 0 draws one.
	Seed uint64
	// Sleep waits for d or until ctx ends; nil sleeps for real. Tests
	// pass one that records d and returns at once.
	Sleep func(ctx context.Context, d time.Duration)
}

// Upstream is the demo wedding API: an http.Handler with the endpoints of
// Endpoints. Each answer waits a log-normal latency drawn for its
// endpoint, and a small share are errors (about 1% 5xx, a few 404 and
// 422); during an incident (SetIncident) 90% of answers are 5xx. Unknown
// paths are 404. Bodies are JSON of about the endpoint's size.
//
// An Upstream is safe for concurrent use.
type Upstream struct {
	mux      *http.ServeMux
	sleep    func(ctx context.Context, d time.Duration)
	incident atomic.Bool

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// NewUpstream returns the demo API.
func NewUpstream(opts UpstreamOptions) *Upstream {
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	u := &Upstream{mux: http.NewServeMux(), sleep: opts.Sleep, rng: rand.New(rand.NewPCG(seed, seed>>1|1))}
	if u.sleep == nil {
		u.sleep = sleepCtx
	}
	for i := range endpoints {
		ep := &endpoints[i]
		u.mux.HandleFunc(ep.Method+" "+ep.Pattern, func(w http.ResponseWriter, r *http.Request) { u.serve(w, r, ep) })
	}
	u.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "NOT_FOUND", "message": "no such endpoint: " + r.Method + " " + r.URL.Path}})
	})
	return u
}

// SetIncident turns the incident on or off: while on, 90% of answers
// (health checks excepted) are 5xx.
func (u *Upstream) SetIncident(on bool) { u.incident.Store(on) }

// Incident reports whether an incident is on.
func (u *Upstream) Incident() bool { return u.incident.Load() }

// ServeHTTP implements http.Handler.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.mux.ServeHTTP(w, r) }

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request, ep *Endpoint) {
	// Read the body first, as a real API would before answering; a photo
	// upload's time is mostly this and storing it.
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	o := ep.decide(u.rng, u.incident.Load())
	seed := u.rng.Uint64()
	u.mu.Unlock()
	u.sleep(r.Context(), o.latency)
	if r.Context().Err() != nil {
		return
	}
	switch {
	case o.status >= 500:
		writeJSON(w, o.status, map[string]any{"error": map[string]string{"code": http.StatusText(o.status), "message": "the wedding service is having trouble; try again"}})
	case o.status >= 400:
		msg := "not found"
		if o.status == 422 {
			msg = "the request does not validate: a required field is missing"
		} else if o.status == 413 {
			msg = "photo too large: at most 25 MB"
		}
		writeJSON(w, o.status, map[string]any{"error": map[string]string{"code": strconv.Itoa(o.status), "message": msg}})
	default:
		writeJSON(w, o.status, body(ep, r, o.bytes, seed))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// body makes a plausible answer of about n bytes for ep.
func body(ep *Endpoint, r *http.Request, n int64, seed uint64) any {
	rng := rand.New(rand.NewPCG(seed, 7))
	switch ep.Pattern {
	case "/healthz":
		return map[string]string{"status": "ok"}
	case "/api/photos/upload":
		return map[string]any{"photo_id": "pho_" + strconv.FormatUint(rng.Uint64()%1e9, 10), "bytes": r.ContentLength, "status": "processing"}
	}
	doc := map[string]any{"endpoint": ep.Name}
	for _, name := range []string{"event", "guest", "form", "item", "client", "code"} {
		if v := r.PathValue(name); v != "" {
			doc[name+"_id"] = v
		}
	}
	// Fill up to the size with list items: guests for guest lists,
	// entries otherwise.
	var items []map[string]string
	for size := int64(80); size < n; size += 110 {
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		items = append(items, map[string]string{
			"name":  first + " " + last,
			"rsvp":  rsvpAnswers[rng.IntN(len(rsvpAnswers))],
			"meal":  meals[rng.IntN(len(meals))],
			"table": strconv.Itoa(1 + rng.IntN(24)),
		})
	}
	if len(items) > 0 {
		doc["items"] = items
	}
	return doc
}

var (
	firstNames  = []string{"Ava", "Ben", "Chloé", "Dev", "Elif", "Finn", "Grace", "Hiro", "Isla", "Jonas", "Kemi", "Liam", "Maya", "Noor", "Oscar", "Priya"}
	lastNames   = []string{"Abara", "Brennan", "Castillo", "Duval", "Eriksen", "Fitzgerald", "Gupta", "Huang", "Iverson", "Johansson", "Kowalski", "Moreau"}
	rsvpAnswers = []string{"yes", "yes", "yes", "no", "maybe", "pending"}
	meals       = []string{"beef", "fish", "vegetarian", "vegan", "child"}
)

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
