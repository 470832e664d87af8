package alerting

import (
	"context"
	"fmt"
	"time"
)

// What people do to alerts: acknowledge and resolve. With a store of its
// own the evaluator's memory holds the newest copy of an open alert and
// the change is made there and written through. With a Shared store the
// change runs in its own Update, on the alert as the store holds it
// under the lock every pass takes, so an acknowledgement and a pass on
// another instance apply one after the other and neither is lost.

// Acknowledge records that by has seen the firing alert id, with an
// optional note. Repeat notifications stop until the alert resolves. It
// returns ErrMissingActor, ErrNotFound, ErrNotFiring (pending or resolved)
// or ErrAlreadyAcknowledged, and with a Shared store errors wrapping
// ErrUnavailable when the store cannot be reached.
func (e *Evaluator) Acknowledge(id, by, note string) (Alert, error) {
	if by == "" {
		return Alert{}, ErrMissingActor
	}
	if e.shared {
		return e.acknowledgeShared(id, by, note)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, t := e.findOpen(id)
	if t == nil {
		return Alert{}, e.notOpen(id, ErrNotFiring)
	}
	if err := acknowledgeable(&t.alert); err != nil {
		return Alert{}, err
	}
	a := t.alert.clone()
	tr := acknowledge(&a, e.now(), by, note)
	if err := e.save(Changes{Put: []Alert{a}, Transitions: []Transition{tr}, Seq: e.seq}); err != nil {
		return Alert{}, err
	}
	t.alert = a
	return a.clone(), nil
}

func (e *Evaluator) acknowledgeShared(id, by, note string) (Alert, error) {
	var a Alert
	err := e.state.Update(context.Background(), func(w StateWriter) error {
		var err error
		if a, err = w.Get(id); err != nil {
			return err
		}
		if err := acknowledgeable(&a); err != nil {
			return err
		}
		tr := acknowledge(&a, e.now(), by, note)
		return w.Save(Changes{Put: []Alert{a}, Transitions: []Transition{tr}})
	})
	if err != nil {
		return Alert{}, readError(err, "acknowledge "+id)
	}
	return a, nil
}

// acknowledgeable returns why a cannot be acknowledged: ErrNotFiring or
// ErrAlreadyAcknowledged; nil when it can.
func acknowledgeable(a *Alert) error {
	switch {
	case !a.Firing():
		return fmt.Errorf("%w: %s is %s", ErrNotFiring, a.ID, a.State)
	case a.Acknowledged():
		return fmt.Errorf("%w: by %s at %s", ErrAlreadyAcknowledged,
			a.Acknowledgement.By, a.Acknowledgement.At.Format(time.RFC3339))
	}
	return nil
}

// Resolve closes an open alert by hand: by is recorded as the actor.
// Receivers that were told it fired are told it resolved, by this
// evaluator, once the change is stored. If the condition still holds,
// the next pass opens a new alert, which goes through pending and For
// again. It returns ErrMissingActor, ErrNotFound or ErrAlreadyResolved,
// and with a Shared store errors wrapping ErrUnavailable when the store
// cannot be reached.
func (e *Evaluator) Resolve(ctx context.Context, id, by, note string) (Alert, error) {
	if by == "" {
		return Alert{}, ErrMissingActor
	}
	var a Alert
	var told bool
	var err error
	if e.shared {
		a, told, err = e.resolveShared(ctx, id, by, note)
	} else {
		a, told, err = e.resolveLocal(id, by, note)
	}
	if err != nil {
		return Alert{}, err
	}
	if told && e.notify != nil {
		if _, err := e.notify.Exec(ctx, a.clone()); err != nil {
			e.log.Warn("handing a resolved alert to the notifiers failed", "alert", id, "err", err)
		}
	}
	return a, nil
}

func (e *Evaluator) resolveLocal(id, by, note string) (Alert, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fp, t := e.findOpen(id)
	if t == nil {
		return Alert{}, false, e.notOpen(id, ErrAlreadyResolved)
	}
	a := t.alert.clone()
	now := e.now()
	tr, told := resolveWithNotice(&a, now, by, note)
	if err := e.save(Changes{Put: []Alert{a}, Transitions: []Transition{tr}, Seq: e.seq}); err != nil {
		return Alert{}, false, err
	}
	delete(e.active, fp)
	e.startCooldown(fp, t.rule, now)
	return a, told, nil
}

func (e *Evaluator) resolveShared(ctx context.Context, id, by, note string) (Alert, bool, error) {
	var a Alert
	var told bool
	now := e.now()
	err := e.state.Update(ctx, func(w StateWriter) error {
		var err error
		if a, err = w.Get(id); err != nil {
			return err
		}
		if !a.State.open() {
			return fmt.Errorf("%w: %s is %s", ErrAlreadyResolved, id, a.State)
		}
		var tr Transition
		tr, told = resolveWithNotice(&a, now, by, note)
		return w.Save(Changes{Put: []Alert{a}, Transitions: []Transition{tr}})
	})
	if err != nil {
		return Alert{}, false, readError(err, "resolve "+id)
	}
	// The cache follows at once, for Stats; the next pass reloads anyway.
	e.mu.Lock()
	if fp, t := e.findOpen(id); t != nil {
		delete(e.active, fp)
		e.startCooldown(fp, t.rule, now)
	}
	e.mu.Unlock()
	return a, told, nil
}

// resolveWithNotice resolves a by hand and reports whether receivers are
// to hear of it: only if they heard of the alert, not of a pending one
// nor of one inhibited since it started firing.
func resolveWithNotice(a *Alert, now time.Time, by, note string) (Transition, bool) {
	told := a.Firing() && !a.LastNotifiedAt.IsZero()
	tr := resolveByHand(a, now, by, note)
	if told {
		a.LastNotifiedAt = now
	}
	return tr, told
}

// notOpen explains why id is not an open alert: ErrNotFound when it does
// not exist in the store, else ifClosed. It reads only the store, so it
// may be called with mu held.
func (e *Evaluator) notOpen(id string, ifClosed error) error {
	var a Alert
	err := e.state.View(context.Background(), func(r StateReader) error {
		var err error
		a, err = r.Get(id)
		return err
	})
	if err != nil {
		return readError(err, "read alert "+id)
	}
	return fmt.Errorf("%w: %s is %s", ifClosed, id, a.State)
}
