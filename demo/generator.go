package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IncidentSwitch turns the upstream's incidents on and off; *Upstream is
// one.
type IncidentSwitch interface {
	SetIncident(on bool)
}

var _ IncidentSwitch = (*Upstream)(nil)

// GeneratorOptions configure NewGenerator. Target and Keys are required.
type GeneratorOptions struct {
	// Target is the base URL requests go to: apiwarden's proxy.
	Target string
	// Keys are the demo keys with their secrets (from SeedKeys).
	Keys []Key
	// Scale multiplies every rate (-rate); 0 means 1.
	Scale float64
	// Location is where the daily rhythm's hours are; nil means local time.
	Location *time.Location
	// Incidents is switched on during incidents; nil: no incidents.
	Incidents IncidentSwitch
	// FirstIncident is when the first incident starts after Run begins
	// (default 20s); later ones follow every 3 to 6 minutes and last 30
	// to 45 seconds.
	FirstIncident time.Duration
	// Tick is how often the generator plans and sends; default 100ms.
	Tick time.Duration
	// MaxInFlight bounds the requests waiting for an answer; a call that
	// finds no room is skipped and counted. Default 256.
	MaxInFlight int
	// Seed makes the traffic reproducible; 0 draws one.
	Seed uint64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Client sends the requests; nil means one with a 30 s timeout.
	Client *http.Client
	// Logger receives transport failures (once a minute at most); nil
	// discards.
	Logger *slog.Logger
}

// Generator sends the demo personas' traffic through apiwarden: the
// ordinary traffic of every persona at the daily rhythm, the abuser's
// runaway script, and incidents on the upstream every few minutes. It
// sends each request from its own goroutine, with the key, client
// address (X-Forwarded-For, which apiwarden trusts from loopback),
// country and user agent of the persona.
type Generator struct {
	opts     GeneratorOptions
	now      func() time.Time
	client   *http.Client
	log      *slog.Logger
	plan     *planner
	incident incidentPlan
	inFlight chan struct{}
	payload  []byte // request bodies are slices of it

	quotaHit []atomic.Bool // by persona: the API answered QUOTA_EXCEEDED
	stats    generatorCounters

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	started  atomic.Bool
	requests sync.WaitGroup

	lastLog atomic.Int64 // unix seconds of the last logged failure
}

type generatorCounters struct {
	sent, failed, skipped atomic.Uint64
	mu                    sync.Mutex
	byStatus              map[int]uint64
}

// GeneratorStats counts what the generator did.
type GeneratorStats struct {
	Sent     uint64         // requests that got an answer
	Failed   uint64         // requests that got none (connection refused, timeout)
	Skipped  uint64         // calls dropped because MaxInFlight were waiting
	ByStatus map[int]uint64 // answers by status code
}

// NewGenerator returns a generator; Run starts it.
func NewGenerator(opts GeneratorOptions) *Generator {
	if opts.Scale <= 0 {
		opts.Scale = 1
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.FirstIncident <= 0 {
		opts.FirstIncident = 20 * time.Second
	}
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 256
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64()
	}
	g := &Generator{
		opts:     opts,
		now:      opts.Now,
		client:   opts.Client,
		log:      opts.Logger,
		plan:     newPlanner(opts.Seed, opts.Location, opts.Scale, opts.Keys),
		inFlight: make(chan struct{}, opts.MaxInFlight),
		quotaHit: make([]atomic.Bool, len(personas)),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		incident: incidentPlan{
			First:  opts.FirstIncident,
			Length: [2]time.Duration{30 * time.Second, 45 * time.Second},
			Gap:    [2]time.Duration{3 * time.Minute, 6 * time.Minute},
		},
	}
	g.stats.byStatus = map[int]uint64{}
	if g.now == nil {
		g.now = time.Now
	}
	if g.client == nil {
		g.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		}}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	// Photo uploads are up to 320 KiB; their bytes need not differ.
	g.payload = bytes.Repeat([]byte("apiwarden demo photo bytes\n"), 13000)
	return g
}

// Run sends traffic until ctx ends or Stop is called, then waits for the
// requests in flight and switches any incident off. It returns nil.
func (g *Generator) Run(ctx context.Context) error {
	g.started.Store(true)
	defer close(g.done)
	ticker := time.NewTicker(g.opts.Tick)
	defer ticker.Stop()
	last := g.now()
	g.incident.reset(last, rand.New(rand.NewPCG(g.opts.Seed, 1)))
	reqCtx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		g.requests.Wait()
		if g.opts.Incidents != nil {
			g.opts.Incidents.SetIncident(false)
		}
	}()
	var calls []call
	incidentOn := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.stop:
			return nil
		case <-ticker.C:
		}
		now := g.now()
		if on := g.incident.at(now); on != incidentOn && g.opts.Incidents != nil {
			incidentOn = on
			g.opts.Incidents.SetIncident(on)
		}
		calls = g.step(last, now, calls[:0])
		last = now
		for i := range calls {
			g.send(reqCtx, calls[i])
		}
	}
}

// Stop ends Run and waits for it. It is safe to call more than once, and
// before Run.
func (g *Generator) Stop() {
	g.stopOnce.Do(func() { close(g.stop) })
	if g.started.Load() {
		<-g.done
	}
}

// step plans the calls of [from, to).
func (g *Generator) step(from, to time.Time, calls []call) []call {
	calls = g.plan.ordinary(from, to, true, calls)
	return g.plan.abuse(from, to, func(i int) bool { return g.quotaHit[i].Load() }, calls)
}

// send makes one call in a goroutine of its own, or skips it when
// MaxInFlight calls are waiting.
func (g *Generator) send(ctx context.Context, c call) {
	select {
	case g.inFlight <- struct{}{}:
	default:
		g.stats.skipped.Add(1)
		return
	}
	g.requests.Add(1)
	go func() {
		defer func() { <-g.inFlight; g.requests.Done() }()
		g.do(ctx, c)
	}()
}

func (g *Generator) do(ctx context.Context, c call) {
	ep := &endpoints[c.endpoint]
	var body io.Reader
	if c.bodyBytes > 0 {
		body = bytes.NewReader(g.payload[:min(c.bodyBytes, int64(len(g.payload)))])
	}
	req, err := http.NewRequestWithContext(ctx, ep.Method, strings.TrimSuffix(g.opts.Target, "/")+c.path, body)
	if err != nil {
		g.stats.failed.Add(1)
		return
	}
	if body != nil {
		if c.endpoint == epPhotoUpload {
			req.Header.Set("Content-Type", "image/jpeg")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Forwarded-For", c.clientIP.String())
	if c.country != "" {
		req.Header.Set("CF-IPCountry", c.country)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			g.stats.failed.Add(1)
			g.logFailure(err)
		}
		return
	}
	if resp.StatusCode == http.StatusTooManyRequests && len(personas[c.persona].Abuse) > 0 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e) == nil && e.Error.Code == "QUOTA_EXCEEDED" {
			g.quotaHit[c.persona].Store(true)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	g.stats.sent.Add(1)
	g.stats.mu.Lock()
	g.stats.byStatus[resp.StatusCode]++
	g.stats.mu.Unlock()
}

// logFailure logs a transport failure at most once a minute: when the
// proxy is gone, every request fails the same way.
func (g *Generator) logFailure(err error) {
	now := time.Now().Unix()
	if last := g.lastLog.Load(); now-last >= 60 && g.lastLog.CompareAndSwap(last, now) {
		g.log.Warn("demo traffic: a request failed", "err", err)
	}
}

// Stats returns the counters so far.
func (g *Generator) Stats() GeneratorStats {
	s := GeneratorStats{Sent: g.stats.sent.Load(), Failed: g.stats.failed.Load(), Skipped: g.stats.skipped.Load(), ByStatus: map[int]uint64{}}
	g.stats.mu.Lock()
	for k, v := range g.stats.byStatus {
		s.ByStatus[k] = v
	}
	g.stats.mu.Unlock()
	return s
}
