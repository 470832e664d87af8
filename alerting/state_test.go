package alerting

import (
	"testing"
	"time"
)

// TestAdvance walks every transition of the state machine.
func TestAdvance(t *testing.T) {
	t0 := time.Date(2026, 6, 5, 12, 0, 0, 0, time.UTC)
	const (
		forDur = time.Minute
		keep   = 5 * time.Minute
	)
	type edge struct{ from, to State }
	cases := []struct {
		name   string
		state  State
		since  time.Duration // how long ago the state was entered
		cond   bool
		timing timing
		want   State
		notice notice
		edges  []edge
	}{
		{"inactive stays inactive", StateInactive, 0, false, timing{forDur, keep}, StateInactive, noticeNone, nil},
		{"inactive to pending", StateInactive, 0, true, timing{forDur, keep}, StatePending, noticeNone,
			[]edge{{StateInactive, StatePending}}},
		{"inactive to firing when For is 0", StateInactive, 0, true, timing{0, keep}, StateFiring, noticeFiring,
			[]edge{{StateInactive, StatePending}, {StatePending, StateFiring}}},
		{"pending waits for For", StatePending, forDur - time.Second, true, timing{forDur, keep}, StatePending, noticeNone, nil},
		{"pending fires when For is met", StatePending, forDur, true, timing{forDur, keep}, StateFiring, noticeFiring,
			[]edge{{StatePending, StateFiring}}},
		{"pending abandoned silently", StatePending, 30 * time.Second, false, timing{forDur, keep}, StateInactive, noticeNone,
			[]edge{{StatePending, StateInactive}}},
		{"firing stays firing", StateFiring, time.Hour, true, timing{forDur, keep}, StateFiring, noticeNone, nil},
		{"firing starts recovering", StateFiring, time.Hour, false, timing{forDur, keep}, StateRecovering, noticeNone,
			[]edge{{StateFiring, StateRecovering}}},
		{"firing resolves at once without KeepFiringFor", StateFiring, time.Hour, false, timing{forDur, 0}, StateResolved, noticeResolved,
			[]edge{{StateFiring, StateResolved}}},
		{"recovering refires silently", StateRecovering, time.Minute, true, timing{forDur, keep}, StateFiring, noticeNone,
			[]edge{{StateRecovering, StateFiring}}},
		{"recovering waits for KeepFiringFor", StateRecovering, keep - time.Second, false, timing{forDur, keep}, StateRecovering, noticeNone, nil},
		{"recovering resolves after KeepFiringFor", StateRecovering, keep, false, timing{forDur, keep}, StateResolved, noticeResolved,
			[]edge{{StateRecovering, StateResolved}}},
		{"resolved is final (cond)", StateResolved, time.Minute, true, timing{forDur, keep}, StateResolved, noticeNone, nil},
		{"resolved is final (no cond)", StateResolved, time.Minute, false, timing{forDur, keep}, StateResolved, noticeNone, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(time.Hour)
			entered := now.Add(-tc.since)
			a := &Alert{ID: "a-1", Fingerprint: "a", Rule: "r", State: tc.state, ActiveAt: entered}
			switch tc.state {
			case StateFiring:
				a.FiredAt = entered
			case StateRecovering:
				a.FiredAt, a.RecoveringSince = entered.Add(-time.Hour), entered
			case StateResolved:
				a.ResolvedAt = entered
			}
			trs, n := advance(a, tc.cond, now, tc.timing, nil)
			if a.State != tc.want || n != tc.notice {
				t.Fatalf("state %s notice %d, want %s notice %d", a.State, n, tc.want, tc.notice)
			}
			if len(trs) != len(tc.edges) {
				t.Fatalf("transitions %+v, want %v", trs, tc.edges)
			}
			for i, tr := range trs {
				if tr.From != tc.edges[i].from || tr.To != tc.edges[i].to || !tr.At.Equal(now) || tr.AlertID != "a-1" {
					t.Errorf("transition %d = %+v, want %v at %s", i, tr, tc.edges[i], now)
				}
			}
			switch a.State {
			case StateFiring:
				if tc.state == StateRecovering && !a.RecoveringSince.IsZero() {
					t.Error("refire kept RecoveringSince")
				}
				if tc.state != StateFiring && tc.state != StateRecovering && !a.FiredAt.Equal(now) {
					t.Errorf("FiredAt %s, want %s", a.FiredAt, now)
				}
			case StateRecovering:
				if tc.state == StateFiring && !a.RecoveringSince.Equal(now) {
					t.Errorf("RecoveringSince %s, want %s", a.RecoveringSince, now)
				}
			case StateResolved:
				if tc.state != StateResolved && !a.ResolvedAt.Equal(now) {
					t.Errorf("ResolvedAt %s, want %s", a.ResolvedAt, now)
				}
			}
		})
	}
}

// TestHumanTransitions covers the two transitions only a person makes.
func TestHumanTransitions(t *testing.T) {
	now := time.Date(2026, 6, 5, 12, 0, 0, 0, time.UTC)
	a := &Alert{ID: "a-1", State: StateFiring}
	tr := acknowledge(a, now, "ana", "looking")
	if a.State != StateFiring || a.Acknowledgement == nil || a.Acknowledgement.By != "ana" ||
		tr.From != StateFiring || tr.To != StateFiring || tr.Actor != "ana" || tr.Note != "looking" {
		t.Fatalf("acknowledge: alert %+v transition %+v", a, tr)
	}
	for _, from := range []State{StatePending, StateFiring, StateRecovering} {
		a := &Alert{ID: "a-1", State: from}
		tr := resolveByHand(a, now, "bo", "fixed upstream")
		if a.State != StateResolved || a.ResolvedBy != "bo" || !a.ResolvedAt.Equal(now) ||
			tr.From != from || tr.Actor != "bo" || tr.Note != "fixed upstream" {
			t.Errorf("resolve by hand from %s: alert %+v transition %+v", from, a, tr)
		}
	}
}
