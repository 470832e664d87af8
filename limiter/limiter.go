package limiter

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// DefaultMaxSubjects is the entry cap used when Options.MaxSubjects is 0.
// An entry takes 132 bytes of table at a load of 3/8 to 3/4, about 180 to
// 350 bytes, plus its subject string; at the default cap every shard's
// table has grown to 32768 slots, which bounds the limiter near 280 MB
// under a flood of distinct addresses.
const DefaultMaxSubjects = 1_000_000

// DefaultSnapshotInterval is how often Run sweeps idle buckets and writes a
// snapshot when Options.SnapshotInterval is 0.
const DefaultSnapshotInterval = 10 * time.Second

// maxShards bounds the number of locks; more buys nothing on small machines.
const maxShards = 64

// Request is one request to be admitted or denied.
type Request struct {
	// Subject owns the buckets: a key id, or "ip:"+client address on
	// public routes.
	Subject string
	// Tier names the subject's tier. An unknown tier gets the limits of
	// the strictest tier.
	Tier string
	// Cost is the number of tokens the request takes from every bucket and
	// from the monthly quota; values below 1 count as 1.
	Cost int
	// Route identifies an extra per-route bucket for this subject, "" for
	// none. The route bucket exists only when RoutePerMinute > 0.
	Route string
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

	runMu     sync.Mutex
	runDone   chan struct{}
	stopCh    chan struct{}
	stopOnce  sync.Once
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
		store:    opts.Store,
		now:      opts.Now,
		log:      opts.Logger,
		interval: opts.SnapshotInterval,
		seed:     maphash.MakeSeed(),
		stopCh:   make(chan struct{}),
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

// limitsView combines a tier table with one calendar day, so a decision
// needs a single map lookup to know its limits. It is rebuilt when the day
// ends or the tiers or calendar are replaced.
type limitsView struct {
	day       *calendarDay
	tiers     *tierTable
	byTier    map[string]tierLimits
	strictest tierLimits
}

func newLimitsView(day *calendarDay, tiers *tierTable) *limitsView {
	v := &limitsView{day: day, tiers: tiers, byTier: make(map[string]tierLimits, len(tiers.byName))}
	for name, t := range tiers.byName {
		v.byTier[name] = limitsFor(t, day)
	}
	v.strictest = v.byTier[tiers.strictest.Name]
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

func (v *limitsView) lookup(tier string) tierLimits {
	if tl, ok := v.byTier[tier]; ok {
		return tl
	}
	return v.strictest
}

// viewAt returns the limits in force at now.
func (l *Limiter) viewAt(now time.Time) *limitsView {
	day := l.calendar.Load().dayAt(now)
	tiers := l.tiers.Load()
	if v := l.view.Load(); v != nil && v.day == day && v.tiers == tiers {
		return v
	}
	v := newLimitsView(day, tiers)
	l.view.Store(v)
	return v
}

// locate returns the shard holding k and k's slotHash there.
func (l *Limiter) locate(k entryKey) (*shard, uint32) {
	h := maphash.String(l.seed, k.subject)
	sh := &l.shards[h&l.mask]
	if k.route != "" {
		h = routeHash(h, maphash.String(l.seed, k.route))
	}
	return sh, slotHash(h)
}

// Allow is AllowAt at the limiter's clock.
func (l *Limiter) Allow(req Request) Result { return l.AllowAt(l.now(), req) }

// AllowAt decides req at the instant now and, if it is admitted, takes its
// cost from every bucket that applies and from the monthly quota. A denied
// request takes nothing. The Result describes every bucket after the
// decision.
func (l *Limiter) AllowAt(now time.Time, req Request) Result {
	at := now.UnixNano()
	v := l.viewAt(now)
	tl := v.lookup(req.Tier)
	cost := int64(max(req.Cost, 1))
	useTier := !req.RouteOnly
	useRoute := req.Route != "" && req.RoutePerMinute > 0
	useQuota := tl.quota > 0
	var routeLimit limit
	if useRoute {
		routeLimit = newLimit(req.RoutePerMinute, RouteWindow)
	}

	// The buckets that apply, in header order.
	var buckets [MaxBuckets]*bucket
	var owners [MaxBuckets]*entry
	var limits [MaxBuckets]limit
	var policies [MaxBuckets]string
	n := 0

	// One hash of the subject picks the shard and the subject's slot.
	h := maphash.String(l.seed, req.Subject)
	sh := &l.shards[h&l.mask]
	sh.mu.Lock()
	var subject, route *entry
	si := -1
	if useTier || useQuota {
		si, _ = sh.get(entryKey{subject: req.Subject}, slotHash(h), -1, at, v.day.monthID)
	}
	if useRoute {
		rh := slotHash(routeHash(h, maphash.String(l.seed, req.Route)))
		ri, moved := sh.get(entryKey{subject: req.Subject, route: req.Route}, rh, si, at, v.day.monthID)
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
	if useTier {
		buckets[0], owners[0], limits[0], policies[0] = &subject.hour, subject, tl.hour, PolicyHour
		buckets[1], owners[1], limits[1], policies[1] = &subject.minute, subject, tl.minute, PolicyMinute
		n = 2
	}
	if useRoute {
		buckets[n], owners[n], limits[n], policies[n] = &route.route, route, routeLimit, PolicyRoute
		n++
	}

	var res Result
	var wait int64
	converted := false
	for i := range n {
		b := buckets[i]
		if b.capacity != limits[i].capacity {
			*b = b.rescale(limits[i], max(v.day.start, owners[i].changed), at)
			converted = true
		}
		wait = max(wait, b.wait(limits[i], cost, at))
	}
	res.Allowed = wait == 0
	if !res.Allowed {
		res.Reason = ReasonRateLimited
		res.RetryAfter = time.Duration(wait)
	}
	if useQuota {
		if subject.month != v.day.monthID {
			subject.month, subject.used = v.day.monthID, 0
		}
		if subject.used+cost > tl.quota {
			res.Allowed = false
			res.Reason = ReasonQuotaExceeded
			res.RetryAfter = max(res.RetryAfter, time.Duration(v.day.monthEnd-at))
		}
	}
	if res.Allowed {
		for i := range n {
			*buckets[i] = buckets[i].take(limits[i], cost, at)
		}
		if useQuota {
			subject.used += cost
			subject.dirty = true
		}
	}
	if res.Allowed || converted {
		// After every conversion: the buckets of an entry share changed.
		for i := range n {
			owners[i].dirty, owners[i].changed = true, at
		}
	}
	var after [MaxBuckets]bucket
	for i := range n {
		after[i] = *buckets[i]
	}
	if useQuota {
		res.MonthlyQuota, res.MonthlyUsed = tl.quota, subject.used
	}
	sh.mu.Unlock()

	for i := range n {
		res.Buckets[i] = after[i].state(policies[i], limits[i], at)
	}
	res.NumBuckets = n
	return res
}

// Peek returns the state of subject's hour and minute buckets and monthly
// counter under tier at now, consuming nothing and creating nothing.
func (l *Limiter) Peek(now time.Time, subject, tier string) Usage {
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
func usageOf(e *entry, tl tierLimits, day *calendarDay, at int64) Usage {
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
func (l *Limiter) Over(now time.Time, fraction float64, fn func(subject string, u Usage)) {
	type hit struct {
		subject string
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
