package alerting

import (
	"context"
	"errors"
	"time"
)

// errNotLeading ends a pass that found, holding the store's lock, that
// another instance leads now; its Update rolls back.
var errNotLeading = errors.New("alerting: not leading")

// applyShared is a pass's apply on a Shared store: one Update that checks
// leadership, reloads the alerts, moves them through the state machine
// (resolving those of rules no longer configured) and writes the changes.
// It returns the alerts to announce, only once the Update has committed.
// It needs evalMu, and takes mu.
func (e *Evaluator) applyShared(ctx context.Context, now time.Time, data []ruleData, boost int) ([]Alert, error) {
	var announce []Alert
	horizon := e.cooldownHorizon()
	err := e.state.Update(ctx, func(w StateWriter) error {
		if !e.leading() {
			return errNotLeading
		}
		snap, err := w.Load(now.Add(-horizon))
		if err != nil {
			return err
		}
		var c Changes
		if announce, c, err = e.applySnapshot(snap, now, data, boost); err != nil || c.empty() {
			return err
		}
		return w.Save(c)
	})
	switch {
	case errors.Is(err, errNotLeading):
		e.log.Info("another instance leads the alert evaluation now; pass skipped")
		return nil, nil
	case err != nil:
		// Memory may hold what did not commit; the next pass reloads it.
		e.storeErrors.Add(1)
		return nil, readError(err, "evaluate alerts")
	}
	return announce, nil
}

// applySnapshot makes snap the alerts in memory and moves them through
// the state machine, resolving those of rules no longer configured. It
// returns the alerts to announce and the changes to store. It takes mu,
// and releases it before the caller writes the changes.
func (e *Evaluator) applySnapshot(snap Snapshot, now time.Time, data []ruleData, boost int) ([]Alert, Changes, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	orphans, err := e.adopt(snap, now)
	if err != nil {
		return nil, Changes{}, err
	}
	announce, c := e.apply(now, data, boost)
	if len(orphans) > 0 {
		resolveOrphans(&c, orphans, now)
		e.log.Info("resolved alerts of rules no longer configured", "alerts", len(orphans))
	}
	return announce, c, nil
}
