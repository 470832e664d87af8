package limiter

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/store"
)

// DefaultMaxSubjects is the entry cap used when Options.MaxSubjects is 0.
// An entry takes a 132-byte table slot at a load of 3/8 to 3/4 (about 180
// to 350 bytes) plus its subject string. At the default cap every shard's
// table has 32768 slots, and a flood of distinct addresses fills the
// limiter to about 280 MB (279 MiB measured with 1M short subjects).
const DefaultMaxSubjects = 1_000_000

// DefaultSnapshotInterval is how often Run sweeps idle buckets and writes a
// snapshot when Options.SnapshotInterval is 0.
const DefaultSnapshotInterval = 10 * time.Second

// maxShards bounds the number of locks; more buys nothing on small machines.
const maxShards = 64

// Request is one request to be admitted or denied.
type Request struct {
	// Subject owns the buckets: KeySubject for a key, IPSubject for a
	// client address on public routes.
	Subject Subject
	// Tier names the subject's tier. An unknown tier gets the limits of
	// the strictest tier.
	Tier string
	// Cost is the number of tokens the request takes from every bucket and
	// from the monthly quota; values below 1 count as 1.
	Cost int
	// Route identifies an extra per-route bucket for this subject
	// (RouteBucketOf), "" for none. The route bucket exists only when
	// RoutePerMinute > 0.
	Route RouteBucket
	// RoutePerMinute is the capacity of the route bucket, refilled over a
	// minute. It is not scaled by the calendar: it protects an endpoint,
	// whose capacity does not change with the season.
	RoutePerMinute int64
	// RouteOnly (the high_volume preset) applies only the route bucket, not
	// the tier's hour and minute buckets. The monthly quota, a billing
	// limit, still applies.
	RouteOnly bool
}

// Options configure New. Tiers is required; the rest have defaults.
type Options struct {
	// Store persists bucket state across restarts; nil keeps it in memory.
	Store *store.Store
	// Tiers is the tier table, keyed by name. Required.
	Tiers map[string]Tier
	// Calendar scales limits by date; nil means no rules, months in UTC.
	Calendar *Calendar
	// MaxSubjects caps the entries held in memory: one per subject plus
	// one per (subject, route) with a route limit. 0 means
	// DefaultMaxSubjects; otherwise it must be at least 2.
	MaxSubjects int
	// SnapshotInterval is how often Run sweeps and snapshots; 0 means
	// DefaultSnapshotInterval.
	SnapshotInterval time.Duration
	// Now is the clock used by Allow, Run and restoring; nil means time.Now.
	Now func() time.Time
	// Logger receives snapshot failures; nil discards.
	Logger *slog.Logger
	// AddressesInMemory keeps the buckets of client addresses and
	// networks (IPSubject, NetworkSubject) out of Store: they start full
	// after a restart, and no client address reaches the disk ([metrics]
	// client_ip other than "full", docs/privacy.md). A record an earlier
	// run stored is deleted by the first snapshot after its bucket changes.
	AddressesInMemory bool
}

// Limiter admits or denies requests with token buckets.
//
// A token bucket holds up to a capacity of tokens and refills continuously,
// at capacity per window, never past its capacity: not in steps at the
// turn of a window. A request of cost n takes n tokens. Each subject has an
// hourly bucket (the tier's RequestsPerHour over an hour) and a burst
// bucket (BurstPerMinute over a minute), both scaled by the calendar, and
// optionally a bucket for the route it calls; a tier may also have a
// monthly quota. A request is admitted only if every bucket that applies
// holds its cost and the quota has room, and then it is taken from all of
// them. A denied request takes nothing, so a client that keeps retrying
// while denied loses nothing by it.
//
// Most callers want Allow, or AllowAt where the caller already knows the
// time (tests step through fixed times with it). Peek reads a subject's
// state without consuming; Over finds subjects close to their limits.
//
// A Limiter is safe for concurrent use. Subjects are spread over shards
// with one mutex each, and a decision holds one shard lock for a few
// arithmetic steps without allocating. Subjects whose buckets have refilled
// completely carry no information and are dropped by the sweeper in Run;
// at MaxSubjects an idle or else the least recently used of a sample is
// dropped. With a Store, Run
// snapshots bucket state periodically and New restores it, so a restart
// never hands out a fresh quota.
//
// When a tier's capacity changes (a calendar rule starts or ends, or
// SetTiers), a bucket keeps its tokens, clamped to the new capacity: a
// reduction applies at once and an increase refills gradually at the new
// rate. A calendar change takes effect at local midnight whenever the
// subject is next seen; a reload takes effect from the subject's last
// request before it.
type Limiter struct {
	store    *store.Store
	now      func() time.Time
	log      *slog.Logger
	interval time.Duration
	// addressesInMemory: snapshots leave out address subjects.
	addressesInMemory bool

	tiers    atomic.Pointer[tierTable]
	calendar atomic.Pointer[Calendar]
	view     atomic.Pointer[limitsView]

	seed   maphash.Seed
	mask   uint64
	shards []shard

	snapMu       sync.Mutex // one snapshot at a time
	snapshotAll  atomic.Bool
	snapshots    atomic.Uint64
	snapshotErrs atomic.Uint64
	lastSnapshot atomic.Int64 // duration in ns
	lastWritten  atomic.Int64
	lastDeleted  atomic.Int64
	restoreSkips int

	life      lifecycle.State
	finalOnce sync.Once
}

// New builds a Limiter and, when opts.Store is set, restores the bucket
// state a previous Snapshot saved.
//
// It returns an error wrapping ErrNoTiers or ErrInvalidTier for a bad tier
// table, ErrInvalidOptions for out-of-range options, and the store's error
// when reading the saved state fails.
func New(opts Options) (*Limiter, error) {
	tiers, err := newTierTable(opts.Tiers)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.MaxSubjects < 0 || opts.MaxSubjects == 1:
		return nil, fmt.Errorf("%w: MaxSubjects must be 0 (default %d) or >= 2, got %d",
			ErrInvalidOptions, DefaultMaxSubjects, opts.MaxSubjects)
	case opts.SnapshotInterval < 0:
		return nil, fmt.Errorf("%w: SnapshotInterval must be >= 0, got %s", ErrInvalidOptions, opts.SnapshotInterval)
	}
	if opts.MaxSubjects == 0 {
		opts.MaxSubjects = DefaultMaxSubjects
	}
	if opts.SnapshotInterval == 0 {
		opts.SnapshotInterval = DefaultSnapshotInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Limiter{
		store:             opts.Store,
		now:               opts.Now,
		log:               opts.Logger,
		interval:          opts.SnapshotInterval,
		seed:              maphash.MakeSeed(),
		addressesInMemory: opts.AddressesInMemory,
	}
	l.tiers.Store(tiers)
	l.SetCalendar(opts.Calendar)

	// Enough entries per shard that hashing imbalance does not matter, and
	// at least 2 so a request's subject and route entries fit together.
	n := 1
	for n < maxShards && opts.MaxSubjects/(n*2) >= 64 {
		n *= 2
	}
	l.mask = uint64(n - 1)
	l.shards = make([]shard, n)
	for i := range l.shards {
		l.shards[i].init(max(opts.MaxSubjects/n, 2))
	}
	if l.store != nil {
		if err := l.restore(l.now()); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// SetTiers replaces the tier table (a config reload). Requests in flight
// finish with the old table; the next ones use the new one. Buckets keep
// their tokens, clamped to the new capacities.
//
// It returns an error wrapping ErrNoTiers or ErrInvalidTier, and then
// keeps the old table.
func (l *Limiter) SetTiers(tiers map[string]Tier) error {
	t, err := newTierTable(tiers)
	if err != nil {
		return err
	}
	l.tiers.Store(t)
	return nil
}

// Tiers returns a copy of the tier table in force.
func (l *Limiter) Tiers() map[string]Tier { return l.tiers.Load().tiers() }

// SetCalendar replaces the calendar (a config reload); nil means no rules,
// months in UTC.
func (l *Limiter) SetCalendar(c *Calendar) {
	if c == nil {
		c, _ = NewCalendar(time.UTC, nil)
	}
	l.calendar.Store(c)
}

// Calendar returns the calendar in force.
func (l *Limiter) Calendar() *Calendar { return l.calendar.Load() }

// tierLimits are one tier's bucket sizes on one calendar day.
type tierLimits struct {
	name         string
	hour, minute limit
	quota        int64
}

// smallTiers is the most tiers a view finds by comparing names in turn; a
// larger table is looked up in a map. Comparing a few short names costs
// less than hashing one, and tier tables are usually this small.
const smallTiers = 8

// limitsView combines a tier table with one calendar day, so a decision
// finds its limits with one lookup. It is immutable, and rebuilt when the
// day ends or the tiers or calendar are replaced.
type limitsView struct {
	calendar  *Calendar
	day       *calendarDay
	tiers     *tierTable
	list      []tierLimits           // every tier; searched in turn when short
	byTier    map[string]*tierLimits // into list; nil when list is short
	strictest *tierLimits
}

func newLimitsView(cal *Calendar, day *calendarDay, tiers *tierTable) *limitsView {
	v := &limitsView{calendar: cal, day: day, tiers: tiers, list: make([]tierLimits, 0, len(tiers.byName))}
	for _, t := range tiers.byName {
		v.list = append(v.list, limitsFor(t, day))
	}
	if len(v.list) > smallTiers {
		v.byTier = make(map[string]*tierLimits, len(v.list))
		for i := range v.list {
			v.byTier[v.list[i].name] = &v.list[i]
		}
	}
	for i := range v.list {
		if v.list[i].name == tiers.strictest.Name {
			v.strictest = &v.list[i]
		}
	}
	return v
}

func limitsFor(t Tier, day *calendarDay) tierLimits {
	mult := day.multiplier(t.Name)
	return tierLimits{
		name:   t.Name,
		hour:   newLimit(scaled(t.RequestsPerHour, mult), HourWindow),
		minute: newLimit(scaled(t.BurstPerMinute, mult), MinuteWindow),
		quota:  t.MonthlyQuota,
	}
}

// lookup returns the limits of tier, or of the strictest tier when there
// is no such tier. The result is shared and must not be modified.
func (v *limitsView) lookup(tier string) *tierLimits {
	if v.byTier == nil {
		for i := range v.list {
			if v.list[i].name == tier {
				return &v.list[i]
			}
		}
		return v.strictest
	}
	if tl, ok := v.byTier[tier]; ok {
		return tl
	}
	return v.strictest
}

// viewAt returns the limits in force at now.
func (l *Limiter) viewAt(now time.Time) *limitsView { return l.viewAtNano(now, now.UnixNano()) }

// viewAtNano is viewAt for callers that have now's UnixNano at hand. The
// cached view is current while its day contains now and neither the
// calendar nor the tiers were replaced; only then is the calendar asked.
func (l *Limiter) viewAtNano(now time.Time, at int64) *limitsView {
	cal, tiers := l.calendar.Load(), l.tiers.Load()
	if v := l.view.Load(); v != nil && v.calendar == cal && v.tiers == tiers && v.day.start <= at && at < v.day.end {
		return v
	}
	v := newLimitsView(cal, cal.dayAt(now), tiers)
	l.view.Store(v)
	return v
}

// locate returns the shard holding k and k's slotHash there.
func (l *Limiter) locate(k entryKey) (*shard, uint32) {
	h := maphash.String(l.seed, string(k.subject))
	sh := &l.shards[h&l.mask]
	if k.route != "" {
		h = routeHash(h, maphash.String(l.seed, string(k.route)))
	}
	return sh, slotHash(h)
}

// Allow is AllowAt at the limiter's clock.
func (l *Limiter) Allow(req Request) Result { return l.AllowAt(l.now(), req) }

// AllowAt decides req at the instant now and, if it is admitted, takes its
// cost from every bucket that applies and from the monthly quota. A denied
// request takes nothing. The Result describes every bucket after the
// decision.
//
// It is safe for concurrent use: decisions on one subject (its tier
// buckets, quota and routes) are serialised by its shard's lock, so
// concurrent requests never take more together than the buckets hold,
// while other subjects' decisions proceed on other shards.
//
// It is longer than a screen on purpose: it is the hot path, and the
// whole decision runs under one shard lock with every bucket's state in
// locals, checked before any is written. Whoever splits it must keep
// BenchmarkAllowAt and its variants (limiter/bench_test.go) at 0 allocs
// and their ns/op within noise of docs/BENCHMARKS.md.
func (l *Limiter) AllowAt(now time.Time, req Request) (res Result) {
	// res is named so it is built in the caller's memory: it is 184 bytes,
	// and copying it out was about a tenth of a decision.
	at := now.UnixNano()
	v := l.viewAtNano(now, at)
	day := v.day
	tl := v.lookup(req.Tier)
	cost := int64(max(req.Cost, 1))
	useTier := !req.RouteOnly
	useRoute := req.Route != "" && req.RoutePerMinute > 0
	useQuota := tl.quota > 0
	var routeLimit limit
	if useRoute {
		routeLimit = newLimit(req.RoutePerMinute, RouteWindow)
	}

	// One hash of the subject picks the shard and the subject's slot.
	h := maphash.String(l.seed, string(req.Subject))
	sh := &l.shards[h&l.mask]
	sh.mu.Lock()
	var subject, route *entry
	si := -1
	if useTier || useQuota {
		si, _ = sh.get(entryKey{subject: req.Subject}, slotHash(h), -1, at, day.monthID)
	}
	if useRoute {
		rh := slotHash(routeHash(h, maphash.String(l.seed, string(req.Route))))
		ri, moved := sh.get(entryKey{subject: req.Subject, route: req.Route}, rh, si, at, day.monthID)
		if moved && si >= 0 {
			si = sh.find(entryKey{subject: req.Subject}, slotHash(h))
		}
		route = &sh.entries[ri]
	}
	if si >= 0 {
		subject = &sh.entries[si]
		if subject.tier != req.Tier {
			subject.tier = req.Tier
		}
	}

	// Every bucket that applies is brought to its current capacity and
	// must hold cost; an entry's buckets convert from its last change.
	var wait int64
	converted := false
	if useTier {
		from := max(day.start, subject.changed)
		if subject.hour.capacity != tl.hour.capacity {
			subject.hour = subject.hour.rescale(tl.hour, from, at)
			converted = true
		}
		if subject.minute.capacity != tl.minute.capacity {
			subject.minute = subject.minute.rescale(tl.minute, from, at)
			converted = true
		}
		wait = max(subject.hour.wait(tl.hour, cost, at), subject.minute.wait(tl.minute, cost, at))
	}
	if useRoute {
		if route.route.capacity != routeLimit.capacity {
			route.route = route.route.rescale(routeLimit, max(day.start, route.changed), at)
			converted = true
		}
		wait = max(wait, route.route.wait(routeLimit, cost, at))
	}

	res.Allowed = wait == 0
	if !res.Allowed {
		res.Reason = ReasonRateLimited
		res.RetryAfter = time.Duration(wait)
	}
	if useQuota {
		if subject.month != day.monthID {
			subject.month, subject.used = day.monthID, 0
		}
		if subject.used+cost > tl.quota {
			res.Allowed = false
			res.Reason = ReasonQuotaExceeded
			res.RetryAfter = max(res.RetryAfter, time.Duration(day.monthEnd-at))
		}
	}
	if res.Allowed {
		if useTier {
			subject.hour = subject.hour.take(tl.hour, cost, at)
			subject.minute = subject.minute.take(tl.minute, cost, at)
		}
		if useRoute {
			route.route = route.route.take(routeLimit, cost, at)
		}
		if useQuota {
			subject.used += cost
			subject.dirty = true
		}
	}
	if res.Allowed || converted {
		// After every conversion: the buckets of an entry share changed.
		if useTier {
			subject.dirty, subject.changed = true, at
		}
		if useRoute {
			route.dirty, route.changed = true, at
		}
	}
	var hour, minute, routeBucket bucket
	if useTier {
		hour, minute = subject.hour, subject.minute
	}
	if useRoute {
		routeBucket = route.route
	}
	if useQuota {
		res.MonthlyQuota, res.MonthlyUsed = tl.quota, subject.used
	}
	sh.mu.Unlock()

	// Headers are described outside the lock, from copies.
	if useTier {
		res.Buckets[0] = hour.state(PolicyHour, tl.hour, at)
		res.Buckets[1] = minute.state(PolicyMinute, tl.minute, at)
		res.NumBuckets = 2
	}
	if useRoute {
		res.Buckets[res.NumBuckets] = routeBucket.state(PolicyRoute, routeLimit, at)
		res.NumBuckets++
	}
	return res
}

// Peek returns the state of subject's hour and minute buckets and monthly
// counter under tier at now, consuming nothing and creating nothing.
func (l *Limiter) Peek(now time.Time, subject Subject, tier string) Usage {
	at := now.UnixNano()
	v := l.viewAt(now)
	tl := v.lookup(tier)
	k := entryKey{subject: subject}
	sh, h := l.locate(k)
	sh.mu.Lock()
	var u Usage
	if i := sh.find(k, h); i >= 0 {
		u = usageOf(&sh.entries[i], tl, v.day, at)
	} else {
		u = usageOf(&entry{}, tl, v.day, at)
	}
	sh.mu.Unlock()
	return u
}

// usageOf describes e under tl. Needs the lock of e's shard.
func usageOf(e *entry, tl *tierLimits, day *calendarDay, at int64) Usage {
	from := max(day.start, e.changed)
	u := Usage{
		Tier:         tl.name,
		Hour:         e.hour.rescale(tl.hour, from, at).state(PolicyHour, tl.hour, at),
		Minute:       e.minute.rescale(tl.minute, from, at).state(PolicyMinute, tl.minute, at),
		MonthlyQuota: tl.quota,
		MonthlyReset: time.Duration(day.monthEnd - at),
	}
	if tl.quota > 0 && e.month == day.monthID {
		u.MonthlyUsed = e.used
	}
	return u
}

// Over calls fn for every subject whose hourly bucket has used at least
// fraction of its capacity, or whose monthly counter has reached fraction
// of its quota, at now (alerting: rate_limit_exceeded, quota_warning). Each
// subject is judged under the tier of its last request. fn runs without any
// limiter lock held and may call the limiter.
func (l *Limiter) Over(now time.Time, fraction float64, fn func(subject Subject, u Usage)) {
	type hit struct {
		subject Subject
		usage   Usage
	}
	at := now.UnixNano()
	v := l.viewAt(now)
	var hits []hit
	for i := range l.shards {
		sh := &l.shards[i]
		hits = hits[:0]
		sh.mu.Lock()
		for i, h := range sh.hashes {
			e := &sh.entries[i]
			if h == 0 || e.key.route != "" {
				continue
			}
			u := usageOf(e, v.lookup(e.tier), v.day, at)
			hourUsed := float64(u.Hour.Limit-u.Hour.Remaining) / float64(u.Hour.Limit)
			monthUsed := 0.0
			if u.MonthlyQuota > 0 {
				monthUsed = float64(u.MonthlyUsed) / float64(u.MonthlyQuota)
			}
			if (hourUsed >= fraction && u.Hour.Remaining < u.Hour.Limit) || (u.MonthlyUsed > 0 && monthUsed >= fraction) {
				hits = append(hits, hit{e.key.subject, u})
			}
		}
		sh.mu.Unlock()
		for _, h := range hits {
			fn(h.subject, h.usage)
		}
	}
}
