package alerting

import "time"

// State is where an alert is in its life.
//
//	           cond holds              cond held for For
//	inactive ────────────▶ pending ─────────────────────▶ firing ◀──────────┐
//	    ▲                     │                             │               │ cond holds again
//	    └─── cond clears ─────┘                 cond clears │               │ (refire, silent)
//	      (abandon, silent)                                 ▼               │
//	                                                   recovering ──────────┘
//	                                                        │
//	                                  cond clear for KeepFiringFor
//	                                                        ▼
//	                                                     resolved
//
// With KeepFiringFor = 0, a firing alert resolves as soon as its condition
// clears, without passing through recovering.
// With For = 0 an alert goes from inactive through pending to firing in one
// evaluation. A person may resolve a pending, firing or recovering alert
// by hand, and acknowledge a firing or recovering one. Resolved is final:
// the next time the condition holds, a new alert opens in pending.
//
// Only two transitions notify receivers: → firing from pending, and
// → resolved from firing or recovering. Refiring from recovering does not,
// so a condition that flaps inside KeepFiringFor is one notification.
//
// Severity is set when an alert starts firing, with the calendar boost in
// force then. While it fires, a larger boost (a Saturday beginning) raises
// it: an escalation, recorded as firing → firing and announced unless a
// person has acknowledged the alert. A boost ending never lowers it, so
// receivers are not told the same alert twice at two levels in one day.
type State string

// States.
const (
	StateInactive   State = "inactive" // no alert: the condition does not hold
	StatePending    State = "pending"
	StateFiring     State = "firing"
	StateRecovering State = "recovering"
	StateResolved   State = "resolved"
)

// ParseState accepts the names of the states.
func ParseState(s string) (State, bool) {
	switch st := State(s); st {
	case StateInactive, StatePending, StateFiring, StateRecovering, StateResolved:
		return st, true
	}
	return "", false
}

// open reports whether an alert in state s is still open (not resolved).
func (s State) open() bool {
	return s == StatePending || s == StateFiring || s == StateRecovering
}

// Transition is one change of an alert's state, kept in the history.
type Transition struct {
	AlertID     string    `json:"alert_id"`
	Fingerprint string    `json:"fingerprint"`
	Rule        string    `json:"rule"`
	At          time.Time `json:"at"`
	From        State     `json:"from"`
	To          State     `json:"to"`
	// Actor is the person for human actions (acknowledge, manual resolve);
	// empty for the evaluator.
	Actor string `json:"actor,omitempty"`
	Note  string `json:"note,omitempty"`
}

// notice says what an evaluation step asks to tell receivers.
type notice int

const (
	noticeNone     notice = iota
	noticeFiring          // the alert started firing
	noticeResolved        // the alert resolved after receivers were told it fired
)

// timing is the part of a rule the state machine reads.
type timing struct {
	For, KeepFiringFor time.Duration
}

// Each function below is one transition. It checks nothing: the caller
// (advance, or the evaluator for human actions) has decided the
// transition applies. It changes the alert and returns the record.

func transition(a *Alert, to State, now time.Time) Transition {
	t := Transition{AlertID: a.ID, Fingerprint: a.Fingerprint, Rule: a.Rule, At: now, From: a.State, To: to}
	a.State = to
	return t
}

// pend: inactive → pending. The condition holds for the first time.
func pend(a *Alert, now time.Time) Transition {
	a.ActiveAt = now
	return transition(a, StatePending, now)
}

// abandon: pending → inactive. The condition cleared before For was met;
// nobody was told, so nobody is told now.
func abandon(a *Alert, now time.Time) Transition {
	return transition(a, StateInactive, now)
}

// fire: pending → firing. The condition held for For.
func fire(a *Alert, now time.Time) Transition {
	a.FiredAt = now
	return transition(a, StateFiring, now)
}

// beginRecovery: firing → recovering. The condition cleared; the alert
// stays firing for receivers for KeepFiringFor in case it returns.
func beginRecovery(a *Alert, now time.Time) Transition {
	a.RecoveringSince = now
	return transition(a, StateRecovering, now)
}

// refire: recovering → firing. The condition returned within
// KeepFiringFor; receivers still think it fires, so it is not announced.
func refire(a *Alert, now time.Time) Transition {
	a.RecoveringSince = time.Time{}
	return transition(a, StateFiring, now)
}

// resolve: firing or recovering → resolved by the evaluator.
func resolve(a *Alert, now time.Time) Transition {
	a.ResolvedAt = now
	return transition(a, StateResolved, now)
}

// resolveByHand: pending, firing or recovering → resolved by a person.
func resolveByHand(a *Alert, now time.Time, by, note string) Transition {
	a.ResolvedAt = now
	a.ResolvedBy = by
	t := transition(a, StateResolved, now)
	t.Actor, t.Note = by, note
	return t
}

// acknowledge marks a firing or recovering alert as seen by a person. The
// state does not change; the history records it as firing → firing.
func acknowledge(a *Alert, now time.Time, by, note string) Transition {
	a.Acknowledgement = &Acknowledgement{By: by, Note: note, At: now}
	t := transition(a, a.State, now)
	t.Actor, t.Note = by, note
	return t
}

// escalate raises the severity of a firing alert. It records the change
// as firing → firing, with the new severity in the note.
func escalate(a *Alert, to Severity, now time.Time) Transition {
	from := a.Severity
	a.Severity = to
	a.Labels["severity"] = string(to)
	t := transition(a, a.State, now)
	t.Note = "severity " + string(from) + " → " + string(to) + " (calendar)"
	return t
}

// advance moves a by one evaluation in which the condition was cond, and
// appends the transitions made to trs. An alert in StateInactive is one
// the evaluator has just created for a condition that holds.
func advance(a *Alert, cond bool, now time.Time, tm timing, trs []Transition) ([]Transition, notice) {
	switch a.State {
	case StateInactive:
		if !cond {
			return trs, noticeNone
		}
		trs = append(trs, pend(a, now))
		if tm.For <= 0 {
			trs = append(trs, fire(a, now))
			return trs, noticeFiring
		}
	case StatePending:
		if !cond {
			return append(trs, abandon(a, now)), noticeNone
		}
		if now.Sub(a.ActiveAt) >= tm.For {
			return append(trs, fire(a, now)), noticeFiring
		}
	case StateFiring:
		if cond {
			return trs, noticeNone
		}
		if tm.KeepFiringFor <= 0 {
			return append(trs, resolve(a, now)), noticeResolved
		}
		return append(trs, beginRecovery(a, now)), noticeNone
	case StateRecovering:
		if cond {
			return append(trs, refire(a, now)), noticeNone
		}
		if now.Sub(a.RecoveringSince) >= tm.KeepFiringFor {
			return append(trs, resolve(a, now)), noticeResolved
		}
	}
	return trs, noticeNone
}
