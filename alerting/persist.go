package alerting

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The evaluator's side of its StateStore: restoring the alerts on start,
// writing each change, and the reads of the admin API. With a store that
// is not Shared the open alerts in memory are the newest copy and reads
// merge them in; with a Shared one every read goes to the store.

// save writes c in one transaction.
func (e *Evaluator) save(c Changes) error {
	if err := e.state.Update(context.Background(), func(w StateWriter) error { return w.Save(c) }); err != nil {
		return fmt.Errorf("alerting: save alerts: %w", err)
	}
	return nil
}

// restore replaces the alerts in memory with the store's: the open
// alerts, the cool-downs still running at now, and the sequence. With a
// store of its own it resolves, without notification, the open alerts of
// rules no longer configured; with a Shared one it leaves them to the
// next pass, which only the leader makes. It needs evalMu, or to run
// before the evaluator is shared.
func (e *Evaluator) restore(ctx context.Context, now time.Time) error {
	var snap Snapshot
	err := e.state.View(ctx, func(r StateReader) error {
		var err error
		snap, err = r.Load(now.Add(-e.cooldownHorizon()))
		return err
	})
	if err != nil {
		return fmt.Errorf("alerting: restore alerts: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	orphans, err := e.adopt(snap, now)
	if err != nil || len(orphans) == 0 || e.shared {
		return err
	}
	c := Changes{Seq: e.seq}
	resolveOrphans(&c, orphans, now)
	e.log.Info("resolved alerts of rules no longer configured", "alerts", len(orphans))
	return e.save(c)
}

// cooldownHorizon is the longest cool-down of the rules: a resolved alert
// older than that starts none.
func (e *Evaluator) cooldownHorizon() time.Duration {
	e.rulesMu.RLock()
	defer e.rulesMu.RUnlock()
	var longest time.Duration
	for _, r := range e.rules {
		longest = max(longest, r.Cooldown)
	}
	return longest
}

// adopt makes snap the alert state in memory: the open alerts of
// configured rules, the cool-downs their resolved alerts still impose at
// now, and the highest sequence seen. It returns the open alerts of rules
// no longer configured, which it leaves out. It needs mu and evalMu (or
// no concurrent pass).
func (e *Evaluator) adopt(snap Snapshot, now time.Time) ([]Alert, error) {
	active := make(map[uint64]*tracked, len(snap.Open))
	cooldown := map[uint64]time.Time{}
	seq := snap.Seq
	var orphans []Alert
	for _, a := range snap.Open {
		seq = max(seq, idSeq(a.ID))
		fp, err := strconv.ParseUint(a.Fingerprint, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("alerting: alert %s: bad fingerprint %q", a.ID, a.Fingerprint)
		}
		r := e.byName[a.Rule]
		if r == nil {
			orphans = append(orphans, a)
			continue
		}
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		active[fp] = &tracked{alert: a, rule: r}
	}
	for _, a := range snap.Resolved {
		seq = max(seq, idSeq(a.ID))
		r := e.byName[a.Rule]
		if r == nil || r.Cooldown <= 0 {
			continue
		}
		fp, err := strconv.ParseUint(a.Fingerprint, 16, 64)
		if err != nil {
			continue // a resolved alert with a bad fingerprint starts no cool-down
		}
		if until := a.ResolvedAt.Add(r.Cooldown); until.After(now) && until.After(cooldown[fp]) {
			cooldown[fp] = until
		}
	}
	e.active, e.cooldown, e.seq = active, cooldown, seq
	return orphans, nil
}

// resolveOrphans adds to c the resolution of alerts whose rule is gone.
func resolveOrphans(c *Changes, orphans []Alert, now time.Time) {
	for _, a := range orphans {
		c.Transitions = append(c.Transitions, resolveByHand(&a, now, "system", "rule no longer configured"))
		c.Put = append(c.Put, a)
	}
}

// Get returns one alert, open or resolved, or ErrNotFound.
func (e *Evaluator) Get(id string) (Alert, error) {
	if !e.shared {
		e.mu.Lock()
		_, t := e.findOpen(id)
		if t != nil {
			a := t.alert.clone()
			e.mu.Unlock()
			return a, nil
		}
		e.mu.Unlock()
	}
	var a Alert
	err := e.state.View(context.Background(), func(r StateReader) error {
		var err error
		a, err = r.Get(id)
		return err
	})
	return a, readError(err, "read alert "+id)
}

// readError wraps the store's errors; ErrNotFound stays as it is.
func readError(err error, what string) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("alerting: %s: %w", what, err)
}

// List returns the alerts that match q, open and resolved (within the
// retention), newest first.
func (e *Evaluator) List(q Query) ([]Alert, error) {
	var open map[string]Alert
	stored := q
	if !e.shared {
		e.mu.Lock()
		open = make(map[string]Alert, len(e.active))
		for _, t := range e.active {
			open[t.alert.ID] = t.alert.clone()
		}
		e.mu.Unlock()
		stored.Limit = 0 // the memory copies may push stored ones out
	}
	var list []Alert
	err := e.state.View(context.Background(), func(r StateReader) error {
		var err error
		list, err = r.List(stored)
		return err
	})
	if err != nil {
		return nil, readError(err, "list alerts")
	}
	if open == nil {
		return newestFirst(list, q.Limit), nil
	}
	out := list[:0]
	for _, a := range list {
		if _, ok := open[a.ID]; !ok { // else the memory copy is newer
			out = append(out, a)
		}
	}
	for _, a := range open {
		if q.Match(&a) {
			out = append(out, a)
		}
	}
	return newestFirst(out, q.Limit), nil
}

// History returns the transitions of one alert, oldest first, or
// ErrNotFound.
func (e *Evaluator) History(id string) ([]Transition, error) {
	a, err := e.Get(id)
	if err != nil {
		return nil, err
	}
	var out []Transition
	err = e.state.View(context.Background(), func(r StateReader) error {
		var err error
		out, err = r.History(&a)
		return err
	})
	return out, readError(err, "read history of "+id)
}

// Cleanup removes resolved alerts and history entries older than the
// retention at now, and forgets cool-downs that have ended. It returns how
// many records it removed. The evaluation loop calls it hourly.
func (e *Evaluator) Cleanup(now time.Time) (int, error) {
	var removed int
	err := e.state.Update(context.Background(), func(w StateWriter) error {
		var err error
		removed, err = w.Cleanup(now.Add(-e.retain))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("alerting: cleanup: %w", err)
	}
	e.mu.Lock()
	e.lastCleanup = now
	for fp, until := range e.cooldown {
		if !until.After(now) {
			delete(e.cooldown, fp)
		}
	}
	e.mu.Unlock()
	return removed, nil
}
