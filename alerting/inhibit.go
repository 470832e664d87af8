package alerting

import "time"

// Inhibition: when two rules of the same type fire for the same subject,
// receivers hear only from the rule of higher severity, as with an
// Alertmanager inhibit rule matching on alertname type and subject. The
// usual case is a key past both quota rules (80% medium, 95% high): one
// page, not two. The lower alert stays open and visible with InhibitedBy
// set; it is announced when the higher one resolves while it still fires.
// A resolve is announced only for an alert whose firing was announced.

// noticed is an alert the state machine asks to announce: it started
// firing, resolved, escalated, or is due for a repeat.
type noticed struct {
	fp uint64
	t  *tracked
}

// inhibitKey groups the alerts that can inhibit one another.
type inhibitKey struct {
	typ     RuleType
	subject Subject
}

// inhibit decides which noticed alerts reach the receivers, and announces
// inhibited alerts whose inhibitor has gone. It sets LastNotifiedAt and
// InhibitedBy, adds what it changed to changed, and returns the copies to
// hand to the notifiers. It needs mu.
func (e *Evaluator) inhibit(now time.Time, notify []noticed, changed map[uint64]*tracked) []Alert {
	var top map[inhibitKey]*tracked
	inhibitorOf := func(t *tracked) *tracked {
		if top == nil {
			top = e.strongestFiring()
		}
		s := top[inhibitKey{t.alert.Type, t.alert.Subject}]
		if s == nil || s == t || s.rule.Severity.Rank() <= t.rule.Severity.Rank() {
			return nil
		}
		return s
	}
	var announce []Alert
	tell := func(fp uint64, t *tracked) {
		t.alert.InhibitedBy = ""
		t.alert.LastNotifiedAt = now
		announce = append(announce, t.alert.clone())
		changed[fp] = t
	}
	told := make(map[*tracked]bool, len(notify))
	for _, n := range notify {
		t := n.t
		if told[t] { // fired this pass and, with no notification yet, also looked due for a repeat
			continue
		}
		told[t] = true
		if !t.alert.Firing() {
			if !t.alert.LastNotifiedAt.IsZero() { // receivers know it fired
				tell(n.fp, t)
			}
			continue
		}
		if s := inhibitorOf(t); s != nil {
			if t.alert.InhibitedBy != s.alert.ID {
				t.alert.InhibitedBy = s.alert.ID
				changed[n.fp] = t
			}
			continue
		}
		tell(n.fp, t)
	}
	// Alerts inhibited earlier whose inhibitor resolved this pass or before.
	for fp, t := range e.active {
		if t.alert.InhibitedBy == "" || told[t] || t.rule == nil || t.alert.State != StateFiring {
			continue
		}
		if s := inhibitorOf(t); s != nil {
			if t.alert.InhibitedBy != s.alert.ID {
				t.alert.InhibitedBy = s.alert.ID
				changed[fp] = t
			}
			continue
		}
		if t.alert.Acknowledged() {
			t.alert.InhibitedBy = ""
			changed[fp] = t
			continue
		}
		tell(fp, t)
	}
	return announce
}

// strongestFiring maps each type and subject to its firing or recovering
// alert of the highest rule severity. It needs mu.
func (e *Evaluator) strongestFiring() map[inhibitKey]*tracked {
	top := make(map[inhibitKey]*tracked)
	for _, t := range e.active {
		if t.rule == nil || !t.alert.Firing() {
			continue
		}
		k := inhibitKey{t.alert.Type, t.alert.Subject}
		if cur := top[k]; cur == nil || t.rule.Severity.Rank() > cur.rule.Severity.Rank() {
			top[k] = t
		}
	}
	return top
}
