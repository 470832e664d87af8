package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/store"
)

// Defaults of Options.
const (
	DefaultInterval       = 10 * time.Second
	DefaultRepeatInterval = 4 * time.Hour
	DefaultRetention      = 30 * 24 * time.Hour
	cleanupEvery          = time.Hour
)

// Options configure an Evaluator. Rules and Store (or State) are
// required, and the sources the rules need: Traffic for every type but
// quota_warning, History for unusual_activity and for
// performance_degradation with a BaselineFactor, Quotas for
// quota_warning.
type Options struct {
	// Store is the data file the alerts are kept in when State is nil.
	Store *store.Store
	// State keeps the alerts instead of Store: package cluster's
	// AlertStore in cluster mode.
	State StateStore
	// Leadership gates Run: it makes no pass (no evaluation, notification
	// or cleanup) while Leading is false, and reloads the alerts from the
	// store before its first pass once it leads again. Nil: always
	// leading, as a single instance.
	Leadership Leadership
	// Rules are filled with WithDefaults and must pass ValidateRules.
	Rules []Rule

	Traffic  TrafficSource
	History  HistorySource
	Quotas   QuotaSource
	Calendar CalendarSource // nil: no severity boost
	// Keys names the keys alerts are about; nil: alerts name them by id.
	Keys KeyDirectory
	// Location is server.timezone: unusual_activity compares an hour with
	// the same local wall-clock hour of past weeks in it, across
	// daylight-saving changes. Nil means UTC.
	Location *time.Location

	// Notify receives the alerts to announce after each pass and after a
	// manual resolve. It is called without locks held but on the
	// evaluator's goroutine, so it must not block: use a Dispatcher. Nil
	// discards.
	Notify Stage

	// Interval between passes in Run; default 10s.
	Interval time.Duration
	// RepeatInterval re-announces a firing alert nobody acknowledged;
	// default 4h, negative never.
	RepeatInterval time.Duration
	// Retention is how long resolved alerts and all history are kept;
	// default 30 days. Cleanup runs hourly from the evaluation loop.
	Retention time.Duration

	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: discard
}

// Evaluator evaluates rules, keeps alerts and their history, and hands the
// alerts that need announcing to a Stage. Create it with New, then either
// call Run (a pass every Interval) or drive it with EvalAt. All methods are
// safe for concurrent use.
type Evaluator struct {
	state    StateStore
	shared   bool // state.Shared(): memory is a cache of the store
	leader   Leadership
	rules    []*compiledRule
	byName   map[string]*compiledRule
	traffic  TrafficSource
	history  HistorySource
	quotas   QuotaSource
	calendar CalendarSource
	keys     KeyDirectory
	loc      *time.Location
	notify   Stage
	interval time.Duration
	repeat   time.Duration
	retain   time.Duration
	now      func() time.Time
	log      *slog.Logger

	// evalMu makes passes run one at a time; it guards the fields used only
	// while reading data: baselines and each rule's hits buffer. SetRules
	// holds it too, so the rules never change during a pass.
	evalMu sync.Mutex
	// rulesMu guards rules and byName for readers outside a pass (Rules,
	// and sources that call Rules during one).
	rulesMu   sync.RWMutex
	baselines map[SubjectKind]*baselines
	recent    map[SubjectKind]*recentHistory
	gen       uint64

	// mu guards the alert state.
	mu          sync.Mutex
	active      map[uint64]*tracked // open alerts by fingerprint
	cooldown    map[uint64]time.Time
	seq         uint64 // last alert sequence number used
	pass        uint64
	lastCleanup time.Time

	evaluations  atomic.Uint64
	sourceErrors atomic.Uint64
	storeErrors  atomic.Uint64
	lastEval     atomic.Int64 // unix nanos
	lastDuration atomic.Int64

	life lifecycle.State
}

// compiledRule is a rule with the evaluator's working state.
type compiledRule struct {
	Rule
	hits []observation // reused every pass; guarded by evalMu
}

// tracked is an open alert.
type tracked struct {
	alert Alert
	rule  *compiledRule // nil when the rule was removed from the config
	seen  uint64        // the last pass in which the condition held
}

// New validates the rules, checks that the sources they need are given and
// restores the open alerts from the store, so that a restart neither loses
// nor re-announces them. Alerts of rules that no longer exist are resolved
// without notification. It returns errors wrapping ErrInvalidRule and
// ErrMissingSource, or the store's error.
func New(opts Options) (*Evaluator, error) {
	state := opts.State
	if state == nil {
		if opts.Store == nil {
			return nil, errors.New("alerting: Options.Store or Options.State is required")
		}
		state = NewStoreState(opts.Store)
	}
	e := &Evaluator{
		state:     state,
		shared:    state.Shared(),
		leader:    opts.Leadership,
		byName:    map[string]*compiledRule{},
		traffic:   opts.Traffic,
		history:   opts.History,
		quotas:    opts.Quotas,
		calendar:  opts.Calendar,
		keys:      opts.Keys,
		loc:       opts.Location,
		notify:    opts.Notify,
		interval:  opts.Interval,
		repeat:    opts.RepeatInterval,
		retain:    opts.Retention,
		now:       opts.Now,
		log:       opts.Logger,
		baselines: map[SubjectKind]*baselines{},
		recent:    map[SubjectKind]*recentHistory{},
		active:    map[uint64]*tracked{},
		cooldown:  map[uint64]time.Time{},
	}
	if e.interval <= 0 {
		e.interval = DefaultInterval
	}
	if e.repeat == 0 {
		e.repeat = DefaultRepeatInterval
	}
	if e.retain <= 0 {
		e.retain = DefaultRetention
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.loc == nil {
		e.loc = time.UTC
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}

	var err error
	if e.rules, e.byName, err = e.compile(opts.Rules); err != nil {
		return nil, err
	}
	if err := e.restore(context.Background(), e.now()); err != nil {
		if !e.shared {
			return nil, err
		}
		// The cluster's store may be down at start; every pass reads it
		// again, so the instance starts and evaluates once it answers.
		e.log.Warn("alerts not loaded at start; the first pass will load them", "err", err)
	}
	return e, nil
}

// compile fills defaults, validates the rules and checks that the sources
// they need are there. Errors wrap ErrInvalidRule and ErrMissingSource.
func (e *Evaluator) compile(list []Rule) ([]*compiledRule, map[string]*compiledRule, error) {
	rules := make([]Rule, len(list))
	for i, r := range list {
		rules[i] = r.WithDefaults()
	}
	if err := ValidateRules(rules); err != nil {
		return nil, nil, err
	}
	var missing []error
	compiled := make([]*compiledRule, 0, len(rules))
	byName := make(map[string]*compiledRule, len(rules))
	for _, r := range rules {
		need := func(ok bool, what string) {
			if !ok {
				missing = append(missing, fmt.Errorf("%w: rule %s (%s) needs %s", ErrMissingSource, r.Name, r.Type, what))
			}
		}
		switch r.Type {
		case QuotaWarning:
			need(e.quotas != nil, "a QuotaSource")
		case UnusualActivity:
			need(e.traffic != nil, "a TrafficSource")
			need(e.history != nil, "a HistorySource")
		case PerformanceDegradation:
			need(e.traffic != nil, "a TrafficSource")
			need(r.BaselineFactor == 0 || e.history != nil, "a HistorySource for baseline_factor")
		default:
			need(e.traffic != nil, "a TrafficSource")
		}
		cr := &compiledRule{Rule: r}
		compiled = append(compiled, cr)
		byName[r.Name] = cr
	}
	if len(missing) > 0 {
		return nil, nil, errors.Join(missing...)
	}
	return compiled, byName, nil
}

// Rules returns the rules in force, with defaults filled in.
func (e *Evaluator) Rules() []Rule {
	e.rulesMu.RLock()
	defer e.rulesMu.RUnlock()
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.Rule
	}
	return out
}

// SetRules replaces the rules (a configuration reload) between two passes.
// Open alerts of a rule that is still there, by name, carry on under its
// new settings; alerts of a rule that is gone are resolved without a
// notification, as on a restart (with a Shared store, by the next pass,
// so only the leader resolves them). It returns the errors of New for
// bad rules, and then changes nothing.
func (e *Evaluator) SetRules(list []Rule) error {
	rules, byName, err := e.compile(list)
	if err != nil {
		return err
	}
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	e.rulesMu.Lock()
	e.rules, e.byName = rules, byName
	e.rulesMu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	var orphans []Alert
	var trs []Transition
	var gone []uint64
	for fp, t := range e.active {
		if r := byName[t.alert.Rule]; r != nil || e.shared {
			t.rule = r
			continue
		}
		a := t.alert.clone()
		trs = append(trs, resolveByHand(&a, now, "system", "rule no longer configured"))
		orphans = append(orphans, a)
		gone = append(gone, fp)
	}
	if len(orphans) == 0 {
		return nil
	}
	if err := e.save(Changes{Put: orphans, Transitions: trs, Seq: e.seq}); err != nil {
		return err
	}
	for _, fp := range gone {
		delete(e.active, fp)
	}
	e.log.Info("resolved alerts of rules no longer configured", "alerts", len(orphans))
	return nil
}

// Run evaluates at once and then every Interval, until ctx ends or Stop is
// called, skipping the passes while Options.Leadership says another
// instance leads. Failed passes are logged; Run returns nil when stopped,
// or an error wrapping lifecycle.ErrAlreadyRunning while another Run is
// active. A Run after Stop, or after an earlier Run has returned, makes
// one pass (if leading) and returns nil.
func (e *Evaluator) Run(ctx context.Context) error {
	stop, finish, err := e.life.Start()
	if errors.Is(err, lifecycle.ErrStopped) {
		if e.leading() {
			e.evalNow(ctx)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("alerting: evaluator: %w", err)
	}
	defer finish()
	ticker := time.NewTicker(e.interval)
	defer ticker.Stop()
	following := false
	for {
		following = e.leadOrFollow(ctx, following)
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-ticker.C:
		}
	}
}

// leadOrFollow makes Run's pass when this evaluator leads, first
// reloading the alerts when it followed until now (another leader changed
// them meanwhile). It returns whether it still follows: it does not lead,
// or the reload failed.
func (e *Evaluator) leadOrFollow(ctx context.Context, following bool) bool {
	if !e.leading() {
		return true
	}
	if following {
		e.evalMu.Lock()
		err := e.restore(ctx, e.now())
		e.evalMu.Unlock()
		if err != nil {
			e.log.Warn("leading, but the alerts could not be reloaded; skipping the pass", "err", err)
			return true
		}
		e.log.Info("leading the alert evaluation")
	}
	e.evalNow(ctx)
	return false
}

// leading reports whether this evaluator evaluates now.
func (e *Evaluator) leading() bool { return e.leader == nil || e.leader.Leading() }

// evalNow is one evaluation pass at the current time, with its failure logged.
func (e *Evaluator) evalNow(ctx context.Context) {
	if err := e.EvalAt(ctx, e.now()); err != nil {
		e.log.Warn("alert evaluation incomplete", "err", err)
	}
}

// Stop ends Run and waits for it to return. It is safe to call more than
// once and from several goroutines, and before Run (which then returns
// after one pass that Stop does not wait for).
func (e *Evaluator) Stop() { e.life.Stop(nil) }

// Done is closed once the evaluator has stopped: when Run has returned, or
// when Stop was called before Run.
func (e *Evaluator) Done() <-chan struct{} { return e.life.Stopped() }

// ruleData is what one rule read in one pass.
type ruleData struct {
	rule *compiledRule
	ok   bool // false: the read failed, leave the rule's alerts alone
}

// EvalAt runs one evaluation pass as if the time were now: it reads the
// data every rule needs, moves every alert through the state machine,
// stores what changed and hands the alerts to announce to Notify. A rule
// whose data cannot be read is skipped for the pass, its alerts left as
// they were (missing data never resolves an alert); the errors are
// returned joined, after the rest of the pass has been done.
//
// With a Shared store the state machine runs inside one Update that
// first reloads the alerts, so it works on what the store holds, an
// acknowledgement made a moment ago on another instance included, and
// the alerts are announced only once that Update has committed. When it
// fails nothing is announced and the next pass starts from the store
// again. EvalAt does not ask Options.Leadership (Run does), except that
// with a Shared store a pass that finds it no longer leads once it holds
// the store's lock changes nothing.
func (e *Evaluator) EvalAt(ctx context.Context, now time.Time) error {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	start := time.Now()

	data, readErr := e.read(now)
	boost := 0
	if e.calendar != nil {
		boost = e.calendar.SeverityBoost(now)
	}

	var announce []Alert
	var storeErr error
	if e.shared {
		announce, storeErr = e.applyShared(ctx, now, data, boost)
	} else {
		e.mu.Lock()
		announce, storeErr = e.applyLocal(now, data, boost)
		e.mu.Unlock()
	}

	if len(announce) > 0 && e.notify != nil {
		if _, err := e.notify.Exec(ctx, announce...); err != nil {
			e.log.Warn("handing alerts to the notifiers failed", "err", err)
		}
	}
	if now.Sub(e.lastCleanupAt()) >= cleanupEvery {
		if _, err := e.Cleanup(now); err != nil {
			storeErr = errors.Join(storeErr, err)
		}
	}
	e.evaluations.Add(1)
	e.lastEval.Store(now.UnixNano())
	e.lastDuration.Store(int64(time.Since(start)))
	return errors.Join(readErr, storeErr)
}

func (e *Evaluator) lastCleanupAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastCleanup
}

// read fetches every rule's data and works out the subjects whose
// condition holds. It needs evalMu and not mu, so API calls are not held
// up by slow sources.
func (e *Evaluator) read(now time.Time) ([]ruleData, error) {
	type windowKey struct {
		kind   SubjectKind
		window time.Duration
	}
	type windowResult struct {
		aggs []Aggregate
		err  error
	}
	windows := map[windowKey]windowResult{}
	readWindow := func(kind SubjectKind, w time.Duration) ([]Aggregate, error) {
		k := windowKey{kind, w}
		res, ok := windows[k]
		if !ok {
			res.aggs, res.err = e.traffic.Window(kind, w, now)
			windows[k] = res
		}
		return res.aggs, res.err
	}
	var quotas []QuotaUsage
	var quotaErr error
	quotasRead := false
	var names map[string]keyName // key subjects' names, asked once a pass

	var errs []error
	data := make([]ruleData, len(e.rules))
	for i, r := range e.rules {
		data[i].rule = r
		r.hits = r.hits[:0]
		var err error
		switch r.Type {
		case ErrorSpike, RateLimitExceeded:
			var aggs []Aggregate
			if aggs, err = readWindow(r.Subject, r.Window); err == nil {
				count := count5xx
				if r.Type == RateLimitExceeded {
					count = count429
				}
				r.hits = ratioHits(&r.Rule, aggs, count, r.hits)
			}
		case PerformanceDegradation:
			var aggs []Aggregate
			var base *baselines
			if r.BaselineFactor > 0 {
				base, err = e.baselinesFor(r.Subject, now)
			}
			if err == nil {
				if aggs, err = readWindow(r.Subject, r.Window); err == nil {
					r.hits = latencyHits(&r.Rule, aggs, base, r.hits)
				}
			}
		case UnusualActivity:
			var aggs []Aggregate
			var base *baselines
			if base, err = e.baselinesFor(r.Subject, now); err == nil {
				if aggs, err = readWindow(r.Subject, r.Window); err == nil {
					e.gen++
					r.hits = unusualHits(&r.Rule, aggs, base, e.gen, r.hits)
				}
			}
		case QuotaWarning:
			if !quotasRead {
				quotas, quotaErr = e.quotas.Quotas(now)
				quotasRead = true
			}
			if err = quotaErr; err == nil {
				r.hits = quotaHits(&r.Rule, quotas, r.hits)
			}
		}
		if err != nil {
			e.sourceErrors.Add(1)
			errs = append(errs, fmt.Errorf("alerting: rule %s: read data: %w", r.Name, err))
			continue
		}
		names = e.nameKeys(r.hits, names)
		data[i].ok = true
	}
	return data, errors.Join(errs...)
}

// keyName is a key as people know it.
type keyName struct {
	name, owner string
	ok          bool
}

// nameKeys fills the name (and a missing owner) of the key subjects among
// hits from the key directory, asking once per key: names caches the
// answers of this pass and is returned, made on first use.
func (e *Evaluator) nameKeys(hits []observation, names map[string]keyName) map[string]keyName {
	if e.keys == nil {
		return names
	}
	for i := range hits {
		o := &hits[i]
		if o.subject.Kind != SubjectKey {
			continue
		}
		if names == nil {
			names = map[string]keyName{}
		}
		k, seen := names[o.subject.Value]
		if !seen {
			k.name, k.owner, k.ok = e.keys.KeyName(o.subject.Value)
			names[o.subject.Value] = k
		}
		if k.ok {
			o.name = k.name
			if o.owner == "" {
				o.owner = k.owner
			}
		}
	}
	return names
}

// baselinesFor returns the baselines of kind for the hour of now,
// rebuilding them in this pass when the hour has changed: from the
// recent hours kept since the last rebuild, and the hours not read yet.
// It needs evalMu.
func (e *Evaluator) baselinesFor(kind SubjectKind, now time.Time) (*baselines, error) {
	hour := now.UTC().Truncate(time.Hour)
	if b := e.baselines[kind]; b != nil && b.hour.Equal(hour) {
		return b, nil
	}
	h := e.recent[kind]
	if h == nil {
		h = newRecentHistory(kind)
		e.recent[kind] = h
	}
	b, err := h.build(e.history, hour, e.loc)
	if err != nil {
		return nil, err
	}
	e.baselines[kind] = b
	return b, nil
}

// applyLocal moves the alerts in memory through the state machine,
// persists what changed and returns the alerts to announce. The memory
// is the newest copy of a store of its own, so a failed write loses
// nothing the next one will not carry. It needs mu.
func (e *Evaluator) applyLocal(now time.Time, data []ruleData, boost int) ([]Alert, error) {
	announce, c := e.apply(now, data, boost)
	if c.empty() {
		return announce, nil
	}
	if err := e.save(c); err != nil {
		e.storeErrors.Add(1)
		e.log.Error("saving alerts failed; state is kept in memory", "err", err)
		return announce, err
	}
	return announce, nil
}

// apply moves the alerts through the state machine and returns the
// alerts to announce and the changes to store. It needs mu.
func (e *Evaluator) apply(now time.Time, data []ruleData, boost int) ([]Alert, Changes) {
	e.pass++
	p := &passChanges{now: now, boost: boost, changed: map[uint64]*tracked{}}
	e.applyHits(p, data)
	e.applyMisses(p, data)

	announce := e.inhibit(now, p.notify, p.changed)
	slices.SortFunc(announce, func(a, b Alert) int { return strings.Compare(a.ID, b.ID) })
	c := Changes{Deleted: p.deleted, Transitions: p.trs, Seq: e.seq}
	if len(p.changed) > 0 {
		c.Put = make([]Alert, 0, len(p.changed))
		for _, t := range p.changed {
			c.Put = append(c.Put, t.alert.clone())
		}
	}
	return announce, c
}

// passChanges collects what one pass of apply changed: the transitions to
// record, the alerts to save and delete, and the alerts to announce
// before inhibition.
type passChanges struct {
	now     time.Time
	boost   int // the calendar's severity boost in force
	trs     []Transition
	changed map[uint64]*tracked
	deleted []string
	notify  []noticed
}

// applyHits steps every alert whose condition held this pass, opening
// one for a subject that has none unless the subject is cooling down.
// It needs mu.
func (e *Evaluator) applyHits(p *passChanges, data []ruleData) {
	for _, d := range data {
		if !d.ok {
			continue
		}
		r := d.rule
		for i := range r.hits {
			o := &r.hits[i]
			fp := fingerprint(r.Name, o.subject)
			t := e.active[fp]
			if t == nil {
				if until, cooling := e.cooldown[fp]; cooling {
					if p.now.Before(until) {
						continue
					}
					delete(e.cooldown, fp)
				}
				t = e.open(r, fp, o)
				e.active[fp] = t
			}
			t.seen = e.pass
			summary, description := describe(&r.Rule, o)
			if e.shared && (t.alert.Value != o.value || t.alert.Summary != summary || t.alert.Description != description) {
				// Other instances read the alert from the store only.
				p.changed[fp] = t
			}
			t.alert.Value = o.value
			t.alert.Summary, t.alert.Description = summary, description
			e.stepAlert(p, t, fp, true)
		}
	}
}

// applyMisses steps the open alerts whose condition did not hold this
// pass (of rules whose data was read), escalates firing alerts when the
// calendar boost grew, and queues due repeats. It needs mu.
func (e *Evaluator) applyMisses(p *passChanges, data []ruleData) {
	ok := make(map[*compiledRule]bool, len(data))
	for _, d := range data {
		ok[d.rule] = d.ok
	}
	for fp, t := range e.active {
		if t.rule == nil || !ok[t.rule] {
			continue
		}
		if t.seen != e.pass {
			e.stepAlert(p, t, fp, false)
			if !t.alert.State.open() {
				continue
			}
		}
		if t.alert.State == StateFiring {
			if sev := t.rule.Severity.Raise(p.boost); sev.Rank() > t.alert.Severity.Rank() {
				p.trs = append(p.trs, escalate(&t.alert, sev, p.now))
				p.changed[fp] = t
				if t.alert.Acknowledgement == nil {
					p.notify = append(p.notify, noticed{fp, t})
					continue
				}
			}
		}
		if t.alert.Firing() && e.repeatDue(&t.alert, p.now) {
			p.notify = append(p.notify, noticed{fp, t})
		}
	}
}

// stepAlert moves alert t through the state machine with the condition's
// value this pass and records in p what changed. An alert that goes back
// to inactive is forgotten; a resolved one starts its rule's cooldown.
// It needs mu.
func (e *Evaluator) stepAlert(p *passChanges, t *tracked, fp uint64, cond bool) {
	before := len(p.trs)
	var n notice
	tm := timing{For: t.rule.For, KeepFiringFor: t.rule.KeepFiringFor}
	p.trs, n = advance(&t.alert, cond, p.now, tm, p.trs)
	if len(p.trs) == before {
		return
	}
	for _, tr := range p.trs[before:] {
		if tr.To == StatePending || tr.To == StateFiring && tr.From == StatePending {
			// Severity is set when the alert starts firing, with the
			// calendar boost in force then; a later, larger boost raises
			// it (escalate, in applyMisses).
			t.alert.Severity = t.rule.Severity.Raise(p.boost)
			t.alert.Labels["severity"] = string(t.alert.Severity)
		}
	}
	switch t.alert.State {
	case StateInactive:
		delete(e.active, fp)
		delete(p.changed, fp)
		p.deleted = append(p.deleted, t.alert.ID)
		return
	case StateResolved:
		delete(e.active, fp)
		e.startCooldown(fp, t.rule, p.now)
	}
	if n != noticeNone {
		p.notify = append(p.notify, noticed{fp, t})
	}
	p.changed[fp] = t
}

// open makes a new alert, not yet pending, for a rule and the subject of
// an observation.
func (e *Evaluator) open(r *compiledRule, fp uint64, o *observation) *tracked {
	e.seq++
	fps := formatFingerprint(fp)
	return &tracked{
		rule: r,
		alert: Alert{
			ID:          alertID(fps, e.seq),
			Fingerprint: fps,
			Rule:        r.Name,
			Type:        r.Type,
			Subject:     o.subject,
			Severity:    r.Severity,
			State:       StateInactive,
			Labels:      labelsFor(&r.Rule, r.Severity, o),
			Threshold:   r.Threshold,
		},
	}
}

func (e *Evaluator) startCooldown(fp uint64, r *compiledRule, now time.Time) {
	if r != nil && r.Cooldown > 0 {
		e.cooldown[fp] = now.Add(r.Cooldown)
	}
}

// repeatDue reports whether a firing alert should be announced again.
func (e *Evaluator) repeatDue(a *Alert, now time.Time) bool {
	return e.repeat > 0 && !a.Acknowledged() && now.Sub(a.LastNotifiedAt) >= e.repeat
}

// findOpen returns the open alert with the given id. It needs mu.
func (e *Evaluator) findOpen(id string) (uint64, *tracked) {
	for fp, t := range e.active {
		if t.alert.ID == id {
			return fp, t
		}
	}
	return 0, nil
}

// Stats is a reading for monitoring.
type Stats struct {
	// Alerts counts open alerts by state (pending, firing, recovering).
	// It is nil when a Shared store could not be read.
	Alerts map[State]int `json:"alerts"`
	// Acknowledged counts the open alerts a person acknowledged.
	Acknowledged int `json:"acknowledged"`

	Evaluations            uint64        `json:"evaluations"`
	SourceErrors           uint64        `json:"source_errors"` // rule reads that failed
	StoreErrors            uint64        `json:"store_errors"`
	LastEvaluation         time.Time     `json:"last_evaluation"`
	LastEvaluationDuration time.Duration `json:"last_evaluation_duration"`

	// Notifiers has one entry per receiver when Notify is a Dispatcher
	// (or any Stage with a Stats() []NotifierStats method).
	Notifiers []NotifierStats `json:"notifiers"`
}

// Stats counts alerts and reads the notifiers' counters; the counters are
// this evaluator's own. With a Shared store the alert counts are the
// cluster's, read from the store in one View: memory is current only on
// the leader, and only as of its last pass (a follower's is as old as its
// last lead, and an acknowledgement made elsewhere reaches it a pass
// later), so every instance reports the figures the alerts API shows.
// When that read fails Alerts is nil and Acknowledged 0: no figure rather
// than a stale one. Safe for concurrent use.
func (e *Evaluator) Stats() Stats {
	s := Stats{
		Evaluations:            e.evaluations.Load(),
		SourceErrors:           e.sourceErrors.Load(),
		StoreErrors:            e.storeErrors.Load(),
		LastEvaluationDuration: time.Duration(e.lastDuration.Load()),
	}
	if ns := e.lastEval.Load(); ns != 0 {
		s.LastEvaluation = time.Unix(0, ns)
	}
	s.Alerts, s.Acknowledged = e.countOpen()
	if n, ok := e.notify.(interface{ Stats() []NotifierStats }); ok {
		s.Notifiers = n.Stats()
	}
	return s
}

// countOpen counts the open alerts by state and the acknowledged ones:
// from memory with a local store, from the store with a Shared one (nil
// when it cannot be read).
func (e *Evaluator) countOpen() (map[State]int, int) {
	open := []State{StatePending, StateFiring, StateRecovering}
	counts := make(map[State]int, len(open))
	for _, st := range open {
		counts[st] = 0
	}
	acked := 0
	count := func(a *Alert) {
		counts[a.State]++
		if a.Acknowledged() {
			acked++
		}
	}
	if !e.shared {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, t := range e.active {
			count(&t.alert)
		}
		return counts, acked
	}
	var list []Alert
	err := e.state.View(context.Background(), func(r StateReader) error {
		var err error
		list, err = r.List(Query{States: open})
		return err
	})
	if err != nil {
		return nil, 0
	}
	for i := range list {
		count(&list[i])
	}
	return counts, acked
}
