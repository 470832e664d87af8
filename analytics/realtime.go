package analytics

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// SlotWidth is the time resolution of Realtime's per-route, per-key and
// per-owner tables.
const SlotWidth = 10 * time.Second

const slotSeconds = int64(SlotWidth / time.Second)

// Defaults and bounds of RealtimeOptions.
const (
	DefaultRealtimeSpan = 15 * time.Minute
	MinRealtimeSpan     = 5 * time.Minute
	MaxRealtimeSpan     = time.Hour
	DefaultMaxRoutes    = 256
	DefaultMaxKeys      = 1024
	DefaultTopRoutes    = 10
)

// RealtimeOptions configure NewRealtime; every zero value picks the
// default.
type RealtimeOptions struct {
	// Span is how far back the ring reaches: DefaultRealtimeSpan, from
	// MinRealtimeSpan to MaxRealtimeSpan, a whole number of seconds.
	Span time.Duration
	// MaxRoutes and MaxKeys cap the distinct routes and keys one
	// 10-second slot tracks; requests of the ones that do not fit still
	// count in the global figures, and in RealtimeStats. Owners are
	// summed from their keys when read.
	MaxRoutes, MaxKeys int
	// TopRoutes is the length of a snapshot's top_routes list.
	TopRoutes int
	// Now is the clock for records without a time and for the wall-clock
	// wrappers; nil means time.Now.
	Now func() time.Time
}

// Realtime keeps the last few minutes of traffic in memory for the live
// dashboard, the stream and the alert evaluator; nothing of it touches
// the store.
//
// It is a ring of 10-second slots. Each slot holds one set of counters per
// second (counts, bytes, and a latency histogram in metrics.Histogram's
// bucket layout) for the global figures: the per-second series, rates and
// percentiles of the last minute and five minutes, and Window for
// SubjectGlobal, all exact to the second. Each slot also holds a table of
// routes (the same counters and histogram) and a compact table of keys
// (counts, owner, tier and a coarse latency histogram, ±19%), for top
// routes, active keys and Window for routes, keys and owners (summed from
// their keys); those windows are whole slots, so they reach up to 10 s
// further back than asked. Each slot's tables are capped
// (RealtimeOptions), so memory stays bounded: at the defaults about 40 MB
// even if every slot were full, under 20 MB for a thousand active keys
// over fifty routes.
//
// Record is what the API gate calls for every request, next to
// metrics.Recorder.Record: it works out the request's latency bucket once,
// locks the request's slot, bumps counters and unlocks; it does not
// allocate once the tables have grown to the traffic. Readers lock one
// slot at a time and convert to metrics.Cell outside the hot path, so a
// snapshot never stalls recording for longer than one slot's copy. A
// Realtime is safe for concurrent use.
//
// In cluster mode every instance publishes its ring (Parts) and applies
// the others' to its Peers; reads merge them slot by slot, so Snapshot
// and Window answer for the whole cluster (realtime_peers.go). A peer's
// seconds and its route and key tables arrive together, within a
// publishing interval.
type Realtime struct {
	span      int64 // seconds
	slots     []slot
	maxRoutes int
	maxKeys   int
	topRoutes int
	now       func() time.Time
	peers     *Peers // the other instances' rings, merged into every read

	newest         atomic.Int64 // the newest slot number recorded into
	late           atomic.Uint64
	overflowRoutes atomic.Uint64
	overflowKeys   atomic.Uint64
}

// slot is 10 seconds of traffic.
type slot struct {
	mu      sync.Mutex
	at      int64 // Unix second / slotSeconds
	seconds [slotSeconds]counters
	routes  routeTable
	keys    subjectTable
}

// NewRealtime returns an empty Realtime. It returns ErrBadOptions naming
// an option out of range.
func NewRealtime(opts RealtimeOptions) (*Realtime, error) {
	if opts.Span == 0 {
		opts.Span = DefaultRealtimeSpan
	}
	switch {
	case opts.Span < MinRealtimeSpan || opts.Span > MaxRealtimeSpan || opts.Span%time.Second != 0:
		return nil, fmt.Errorf("%w: Span must be whole seconds from %s to %s, got %s", ErrBadOptions, MinRealtimeSpan, MaxRealtimeSpan, opts.Span)
	case opts.MaxRoutes < 0 || opts.MaxKeys < 0 || opts.TopRoutes < 0:
		return nil, fmt.Errorf("%w: MaxRoutes, MaxKeys and TopRoutes must be ≥ 0", ErrBadOptions)
	}
	if opts.MaxRoutes == 0 {
		opts.MaxRoutes = DefaultMaxRoutes
	}
	if opts.MaxKeys == 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.TopRoutes == 0 {
		opts.TopRoutes = DefaultTopRoutes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	span := int64(opts.Span / time.Second)
	// Enough slots for a whole span ending anywhere in a slot, plus the
	// slot in progress.
	nslots := int(span/slotSeconds + 2)
	return &Realtime{
		span:      span,
		slots:     make([]slot, nslots),
		maxRoutes: opts.MaxRoutes,
		maxKeys:   opts.MaxKeys,
		topRoutes: opts.TopRoutes,
		now:       opts.Now,
		peers: &Peers{nslots: nslots, maxRoutes: opts.MaxRoutes, maxKeys: opts.MaxKeys,
			rings: make(map[string]*peerRing)},
	}, nil
}

// Span returns how far back the ring reaches.
func (rt *Realtime) Span() time.Duration { return time.Duration(rt.span) * time.Second }

// Peers returns the other instances' rings, which every read merges with
// this one's; empty until something applies their parts (cluster mode).
func (rt *Realtime) Peers() *Peers { return rt.peers }

func ringIndex(n int64, size int) int {
	i := int(n % int64(size))
	if i < 0 {
		i += size
	}
	return i
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Record counts one request. It reports false, counting nothing, when the
// record is older than the ring reaches or stamped after the clock's next
// slot; a zero rec.Time is now. It has
// metrics.Recorder.Record's signature so the gate can hand the same record
// to both. It keeps no reference to rec, only to its route, key and owner
// strings until their slot is reused.
func (rt *Realtime) Record(rec *metrics.Record) bool {
	t := rec.Time
	if t.IsZero() {
		t = rt.now()
	}
	sec := t.Unix()
	n := floorDiv(sec, slotSeconds)
	if !rt.admit(n) {
		rt.late.Add(1)
		return false
	}
	o := observe(rec)
	s := &rt.slots[ringIndex(n, len(rt.slots))]
	s.mu.Lock()
	if s.at != n {
		if s.at > n {
			s.mu.Unlock()
			rt.late.Add(1)
			return false
		}
		s.reset(n)
	}
	s.seconds[sec-n*slotSeconds].add(&o)
	var overRoute, overKey bool
	if rec.Route != "" {
		overRoute = !s.routes.add(rec.Route, &o, rt.maxRoutes)
	}
	if rec.KeyID != "" {
		overKey = !s.keys.add(rec.KeyID, rec, &o, rt.maxKeys)
	}
	s.mu.Unlock()
	if overRoute {
		rt.overflowRoutes.Add(1)
	}
	if overKey {
		rt.overflowKeys.Add(1)
	}
	return true
}

// admit reports whether slot n is inside the ring: not older than the
// newest slot seen minus the ring's length, and not in the future (past
// the clock's slot), which would push every current request out.
func (rt *Realtime) admit(n int64) bool {
	newest := rt.newest.Load()
	if n <= newest {
		return n > newest-int64(len(rt.slots))
	}
	if n > floorDiv(rt.now().Unix(), slotSeconds)+1 {
		return false
	}
	for newest < n && !rt.newest.CompareAndSwap(newest, n) {
		newest = rt.newest.Load()
	}
	return true
}

func (s *slot) reset(n int64) {
	s.at = n
	for i := range s.seconds {
		s.seconds[i].reset()
	}
	s.routes.reset()
	s.keys.reset()
}

// RealtimeStats counts what Realtime could not place.
type RealtimeStats struct {
	Late           uint64 // records older than the ring (or from the future), not counted
	OverflowRoutes uint64 // requests whose route did not fit its slot's table
	OverflowKeys   uint64 // … whose key did not fit (nor count for its owner)
}

// Stats returns the counters since NewRealtime.
func (rt *Realtime) Stats() RealtimeStats {
	return RealtimeStats{Late: rt.late.Load(), OverflowRoutes: rt.overflowRoutes.Load(),
		OverflowKeys: rt.overflowKeys.Load()}
}

// The fine histogram uses metrics.Histogram's buckets (scale 3) from
// 2^-7 ms (8 µs) to 2^17 ms (131 s) in a fixed array, so counting is an
// increment; values beyond either end count in the end bucket and the
// exact minimum and maximum clamp what the percentiles say there.
const (
	fineMinIndex = -7 << metrics.HistogramScale
	fineMaxIndex = 17 << metrics.HistogramScale
	fineBuckets  = fineMaxIndex - fineMinIndex + 1
)

// observation is what the counters take from a record, worked out once.
type observation struct {
	class       int
	rateLimited bool
	authFailure bool
	bytesIn     uint64
	bytesOut    uint64
	latencyUS   uint64
	fine        int // index into a fine histogram; -1 for a latency ≤ 0
	coarse      int // index into a coarse histogram
}

func observe(rec *metrics.Record) observation {
	o := observation{
		class:       rec.StatusClass(),
		rateLimited: rec.IsRateLimited(),
		authFailure: rec.IsAuthFailure(),
		bytesIn:     uint64(max(rec.RequestBytes, 0)),
		bytesOut:    uint64(max(rec.ResponseBytes, 0)),
		latencyUS:   uint64(max(rec.Latency, 0) / time.Microsecond),
		fine:        -1,
	}
	if rec.Latency > 0 {
		i := metrics.BucketIndex(float64(rec.Latency) / float64(time.Millisecond))
		o.fine = min(max(i, fineMinIndex), fineMaxIndex) - fineMinIndex
		// A coarse bucket is ceil(2·log2 ms) where a fine one is ceil(8·log2 ms).
		o.coarse = min(max((i+3)>>2+coarseOffset, 0), coarseBuckets-1)
	}
	return o
}

// counters are a second's (or a route's) traffic: what a metrics.Cell
// holds, in a form that counts without allocating.
type counters struct {
	count        uint64
	status       [6]uint64 // by class; [0] for statuses out of range
	rateLimited  uint64
	authFailures uint64
	bytesIn      uint64
	bytesOut     uint64
	latencySumUS uint64
	latencyMinUS uint64
	latencyMaxUS uint64
	zero         uint64 // latencies ≤ 0
	latency      [fineBuckets]uint32
}

func (c *counters) reset() {
	if c.count != 0 {
		*c = counters{}
	}
}

func (c *counters) add(o *observation) {
	if c.count == 0 || o.latencyUS < c.latencyMinUS {
		c.latencyMinUS = o.latencyUS
	}
	c.latencyMaxUS = max(c.latencyMaxUS, o.latencyUS)
	c.count++
	c.status[o.class]++
	if o.rateLimited {
		c.rateLimited++
	}
	if o.authFailure {
		c.authFailures++
	}
	c.bytesIn += o.bytesIn
	c.bytesOut += o.bytesOut
	c.latencySumUS += o.latencyUS
	if o.fine < 0 {
		c.zero++
	} else {
		c.latency[o.fine]++
	}
}

// addTo merges c into a metrics.Cell, so Stats and percentiles come from
// the same code as for rollups. Each bucket's count is added at the
// bucket's geometric middle, which falls in the same metrics bucket.
func (c *counters) addTo(dst *metrics.Cell) {
	if c.count == 0 {
		return
	}
	tmp := metrics.Cell{
		Count: c.count, Status2xx: c.status[2], Status3xx: c.status[3], Status4xx: c.status[4], Status5xx: c.status[5],
		RateLimited: c.rateLimited, AuthFailures: c.authFailures, BytesIn: c.bytesIn, BytesOut: c.bytesOut,
		LatencySum: time.Duration(c.latencySumUS) * time.Microsecond,
		LatencyMin: time.Duration(c.latencyMinUS) * time.Microsecond,
		LatencyMax: time.Duration(c.latencyMaxUS) * time.Microsecond,
	}
	tmp.Latency.AddN(0, c.zero)
	for i, n := range c.latency {
		if n != 0 {
			idx := float64(i + fineMinIndex)
			tmp.Latency.AddN(math.Exp2((idx-0.5)/(1<<metrics.HistogramScale)), uint64(n))
		}
	}
	dst.Merge(&tmp)
}

// slotTable is one slot's routes or keys by name. Entries are reused
// across slots, so a warmed-up ring does not allocate.
type slotTable[E any] struct {
	index   map[string]int32
	entries []E
}

func (t *slotTable[E]) reset() {
	clear(t.index)
	t.entries = t.entries[:0]
}

// entry returns name's entry, zeroed and marked fresh when the name is new
// in this slot, or nil when the table already holds limit names.
func (t *slotTable[E]) entry(name string, limit int) (e *E, fresh bool) {
	if i, ok := t.index[name]; ok {
		return &t.entries[i], false
	}
	n := len(t.entries)
	if n >= limit {
		return nil, false
	}
	if t.index == nil {
		t.index = make(map[string]int32)
	}
	// Zeroed in place: a zero E in this frame (E is a route's counters,
	// about 1 KiB) made it 1,008 bytes on every proxied request's path,
	// which then needed more than a 4 KiB stack (docs/BENCHMARKS.md,
	// "Stacks per connection on the fasthttp proxy").
	t.entries = slices.Grow(t.entries, 1)[:n+1]
	clear(t.entries[n:])
	t.index[name] = int32(n)
	return &t.entries[n], true
}

// routeTable is a slot's routes with full counters.
type routeTable struct{ slotTable[routeEntry] }

type routeEntry struct {
	name string
	counters
}

func (t *routeTable) add(name string, o *observation, limit int) bool {
	e, fresh := t.entry(name, limit)
	if e == nil {
		return false
	}
	if fresh {
		e.name = name
	}
	e.add(o)
	return true
}

// subjectTable is a slot's keys with compact counters.
type subjectTable struct{ slotTable[subjectEntry] }

type subjectEntry struct {
	name, owner, tier string // the key's owner and tier, as last seen
	requests          uint32
	errors5xx         uint32
	rateLimited       uint32
	maxLatencyUS      uint32
	latency           coarseHistogram
}

func (t *subjectTable) add(name string, rec *metrics.Record, o *observation, limit int) bool {
	e, fresh := t.entry(name, limit)
	if e == nil {
		return false
	}
	if fresh {
		e.name = name
	}
	// Compare before writing: a key's owner and tier rarely change, and a
	// string store costs a GC write barrier while a cycle runs.
	if e.owner != rec.OwnerID {
		e.owner = rec.OwnerID
	}
	if e.tier != rec.Tier {
		e.tier = rec.Tier
	}
	e.requests++
	if o.class == 5 {
		e.errors5xx++
	}
	if o.rateLimited {
		e.rateLimited++
	}
	e.maxLatencyUS = uint32(min(max(uint64(e.maxLatencyUS), o.latencyUS), math.MaxUint32))
	e.latency[o.coarse]++
	return true
}

// coarseHistogram counts latencies in buckets a factor √2 wide, from
// 0.5 ms to 2 s, with open ends: enough for a p95 within about 19%, in
// 96 bytes per key and slot.
type coarseHistogram [coarseBuckets]uint32

const (
	coarseBuckets = 24
	coarseOffset  = 2 // bucket 0 holds ceil(2·log2(ms)) ≤ -2, i.e. ≤ 0.5 ms
)

func (h *coarseHistogram) merge(o *coarseHistogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// quantile answers the nearest-rank q-quantile as the geometric middle of
// its bucket, clamped to maxLatency (which also answers the open top).
func (h *coarseHistogram) quantile(q float64, maxLatency time.Duration) time.Duration {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i, c := range h {
		seen += uint64(c)
		if seen < rank {
			continue
		}
		if i == coarseBuckets-1 {
			return maxLatency
		}
		j := float64(i - coarseOffset)
		ms := math.Exp2((j - 0.5) / 2)
		return min(time.Duration(ms*float64(time.Millisecond)), maxLatency)
	}
	return maxLatency
}

// lastComplete is the last whole second before now.
func lastComplete(now time.Time) int64 { return now.Unix() - 1 }

// sumSeconds merges seconds first..last into dst. It copies counters
// under each slot's lock and converts them outside it.
func (rt *Realtime) sumSeconds(dst *metrics.Cell, first, last int64) {
	var acc counters
	rt.eachSlot(first, last, func(s *slot) {
		for i := range s.seconds {
			if sec := s.at*slotSeconds + int64(i); sec >= first && sec <= last {
				acc.merge(&s.seconds[i])
			}
		}
	})
	acc.addTo(dst)
}

// routeSums adds up the route counters of slots, keeping the order in
// which routes were first seen.
type routeSums struct {
	byName map[string]*counters
	order  []string
}

func newRouteSums() *routeSums { return &routeSums{byName: make(map[string]*counters)} }

// add merges one slot's routes.
func (r *routeSums) add(s *slot) {
	for i := range s.routes.entries {
		e := &s.routes.entries[i]
		c := r.byName[e.name]
		if c == nil {
			c = new(counters)
			r.byName[e.name] = c
			r.order = append(r.order, e.name)
		}
		c.merge(&e.counters)
	}
}

func (c *counters) merge(o *counters) {
	if o.count == 0 {
		return
	}
	if c.count == 0 || o.latencyMinUS < c.latencyMinUS {
		c.latencyMinUS = o.latencyMinUS
	}
	c.latencyMaxUS = max(c.latencyMaxUS, o.latencyMaxUS)
	c.count += o.count
	for i := range c.status {
		c.status[i] += o.status[i]
	}
	c.rateLimited += o.rateLimited
	c.authFailures += o.authFailures
	c.bytesIn += o.bytesIn
	c.bytesOut += o.bytesOut
	c.latencySumUS += o.latencySumUS
	c.zero += o.zero
	for i, n := range o.latency {
		c.latency[i] += n
	}
}

// eachSlot calls fn, under the slot's lock, for every slot that overlaps
// seconds first..last and still holds its data, oldest first: this
// ring's, then the same slot of each peer's (Peers).
func (rt *Realtime) eachSlot(first, last int64, fn func(s *slot)) {
	rt.peers.mu.RLock()
	defer rt.peers.mu.RUnlock()
	for n := floorDiv(first, slotSeconds); n <= floorDiv(last, slotSeconds); n++ {
		s := &rt.slots[ringIndex(n, len(rt.slots))]
		s.mu.Lock()
		if s.at == n {
			fn(s)
		}
		s.mu.Unlock()
		rt.peers.eachSlot(n, fn)
	}
}

// RouteStats is one route of a snapshot's top list.
type RouteStats struct {
	Route     string  `json:"route"`
	Requests  uint64  `json:"requests"`
	Errors5xx uint64  `json:"errors_5xx"`
	P95MS     float64 `json:"p95_ms"`
}

// WindowStats are the figures of the last minute or five minutes: Stats
// (UniqueKeys set) plus requests per second, active keys and the busiest
// routes.
type WindowStats struct {
	Stats
	RPS        float64      `json:"rps"`
	ActiveKeys uint64       `json:"active_keys"`
	TopRoutes  []RouteStats `json:"top_routes"`
}

// SecondPoint is one second of the realtime series.
type SecondPoint struct {
	T           time.Time `json:"t"`
	Requests    uint64    `json:"requests"`
	Errors5xx   uint64    `json:"errors_5xx"`
	RateLimited uint64    `json:"rate_limited"`
	P95MS       float64   `json:"p95_ms"`
}

// Snapshot is the realtime answer (docs/API.md, realtime): with Series
// for GET /admin/v1/analytics/realtime, with Point instead for each event
// of the stream.
type Snapshot struct {
	GeneratedAt  time.Time     `json:"generated_at"`
	LastMinute   WindowStats   `json:"last_minute"`
	Last5Minutes WindowStats   `json:"last_5_minutes"`
	Series       []SecondPoint `json:"series,omitempty"`
	Point        *SecondPoint  `json:"point,omitempty"`
}

// Snapshot reads the ring as of now: the windows end with the last
// complete second. With series it carries every second of the span,
// oldest first; without, only the last complete second as Point.
func (rt *Realtime) Snapshot(now time.Time, series bool) Snapshot {
	last := lastComplete(now)
	snap := Snapshot{GeneratedAt: now.UTC(),
		LastMinute:   rt.windowStats(last-59, last),
		Last5Minutes: rt.windowStats(last-299, last)}
	if series {
		snap.Series = make([]SecondPoint, 0, rt.span)
		for sec := last - rt.span + 1; sec <= last; sec++ {
			snap.Series = append(snap.Series, rt.point(sec))
		}
	} else {
		p := rt.point(last)
		snap.Point = &p
	}
	return snap
}

func (rt *Realtime) point(sec int64) SecondPoint {
	p := SecondPoint{T: time.Unix(sec, 0).UTC()}
	var c metrics.Cell
	rt.sumSeconds(&c, sec, sec)
	if c.Count > 0 {
		p.Requests, p.Errors5xx, p.RateLimited = c.Count, c.Status5xx, c.RateLimited
		p.P95MS = millis(c.LatencyQuantile(0.95))
	}
	return p
}

func (rt *Realtime) windowStats(first, last int64) WindowStats {
	var sum metrics.Cell
	rt.sumSeconds(&sum, first, last)
	w := WindowStats{Stats: StatsOf(&sum), RPS: float64(sum.Count) / float64(last-first+1)}
	keys := make(map[string]struct{})
	routes := newRouteSums()
	rt.eachSlot(first, last, func(s *slot) {
		for i := range s.keys.entries {
			keys[s.keys.entries[i].name] = struct{}{}
		}
		routes.add(s)
	})
	w.ActiveKeys = uint64(len(keys))
	w.UniqueKeys = ptr(w.ActiveKeys)
	w.TopRoutes = make([]RouteStats, 0, len(routes.order))
	for _, name := range routes.order {
		rc := routes.byName[name]
		w.TopRoutes = append(w.TopRoutes, RouteStats{Route: name, Requests: rc.count, Errors5xx: rc.status[5]})
	}
	slices.SortFunc(w.TopRoutes, func(a, b RouteStats) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Route, b.Route))
	})
	if len(w.TopRoutes) > rt.topRoutes {
		w.TopRoutes = w.TopRoutes[:rt.topRoutes]
	}
	for i := range w.TopRoutes { // percentiles only for the ones shown
		var c metrics.Cell
		routes.byName[w.TopRoutes[i].Route].addTo(&c)
		w.TopRoutes[i].P95MS = millis(c.LatencyQuantile(0.95))
	}
	return w
}
