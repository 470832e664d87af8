package alerting_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

const tick = 10 * time.Second

var (
	global = alerting.Subject{Kind: alerting.SubjectGlobal}
	key1   = alerting.Subject{Kind: alerting.SubjectKey, Value: "key_1"}
	forms  = alerting.Subject{Kind: alerting.SubjectRoute, Value: "/api/forms/*"}
)

func errorSpikeRule() alerting.Rule {
	return alerting.Rule{
		Name: "error-spike", Type: alerting.ErrorSpike, Subject: alerting.SubjectGlobal,
		Window: 5 * time.Minute, Threshold: 0.05, MinRequests: 50,
		For: 30 * time.Second, KeepFiringFor: time.Minute, Severity: alerting.SeverityHigh,
	}
}

func errorRate(h *harness, requests, errors5xx int64) {
	h.traffic.set(alerting.SubjectGlobal, alerting.Aggregate{Subject: global, Requests: requests, Errors5xx: errors5xx})
}

// TestEachTypeFiresAndResolves shows every rule type going pending →
// firing on bad data and resolving by itself when the data is normal
// again, with exactly one firing and one resolved notification.
func TestEachTypeFiresAndResolves(t *testing.T) {
	timing := func(r alerting.Rule) alerting.Rule {
		r.For, r.KeepFiringFor = 30*time.Second, time.Minute
		return r
	}
	steadyHistory := func(kind alerting.SubjectKind, subject string, requests int64, p95 time.Duration) func(*alerting.Options) {
		return func(o *alerting.Options) {
			o.History = fakeHistory(func(k alerting.SubjectKind, _ time.Time) map[string]alerting.HourStat {
				if k != kind {
					return nil
				}
				return map[string]alerting.HourStat{subject: {Requests: requests, P95: p95}}
			})
		}
	}
	cases := []struct {
		name    string
		rule    alerting.Rule
		subject alerting.Subject
		tweak   []func(*alerting.Options)
		bad     func(h *harness)
		normal  func(h *harness)
	}{
		{
			name: "error_spike", rule: errorSpikeRule(), subject: global,
			bad:    func(h *harness) { errorRate(h, 1000, 120) },
			normal: func(h *harness) { errorRate(h, 1000, 3) },
		},
		{
			name: "rate_limit_exceeded", subject: key1,
			rule: timing(alerting.Rule{Name: "rl", Type: alerting.RateLimitExceeded, Subject: alerting.SubjectKey,
				Window: 5 * time.Minute, Threshold: 0.5, MinRequests: 50, Severity: alerting.SeverityMedium}),
			bad: func(h *harness) {
				h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 500, RateLimited: 300})
			},
			normal: func(h *harness) {
				h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 500, RateLimited: 2})
			},
		},
		{
			name: "performance_degradation absolute", subject: forms,
			rule: timing(alerting.Rule{Name: "slow", Type: alerting.PerformanceDegradation, Subject: alerting.SubjectRoute,
				Window: 5 * time.Minute, Threshold: 2000, MinRequests: 50, Severity: alerting.SeverityMedium}),
			bad: func(h *harness) {
				h.traffic.set(alerting.SubjectRoute, alerting.Aggregate{Subject: forms, Requests: 800, P95: 3 * time.Second})
			},
			normal: func(h *harness) {
				h.traffic.set(alerting.SubjectRoute, alerting.Aggregate{Subject: forms, Requests: 800, P95: 200 * time.Millisecond})
			},
		},
		{
			name: "performance_degradation baseline factor", subject: forms,
			rule: timing(alerting.Rule{Name: "slower", Type: alerting.PerformanceDegradation, Subject: alerting.SubjectRoute,
				Window: 5 * time.Minute, BaselineFactor: 3, MinRequests: 50, Severity: alerting.SeverityMedium}),
			tweak: []func(*alerting.Options){steadyHistory(alerting.SubjectRoute, forms.Value, 5000, 100*time.Millisecond)},
			bad: func(h *harness) {
				h.traffic.set(alerting.SubjectRoute, alerting.Aggregate{Subject: forms, Requests: 800, P95: 500 * time.Millisecond})
			},
			normal: func(h *harness) {
				h.traffic.set(alerting.SubjectRoute, alerting.Aggregate{Subject: forms, Requests: 800, P95: 150 * time.Millisecond})
			},
		},
		{
			name: "quota_warning", subject: key1,
			rule: timing(alerting.Rule{Name: "quota", Type: alerting.QuotaWarning, Subject: alerting.SubjectKey,
				Threshold: 0.8, Severity: alerting.SeverityMedium}),
			bad:    func(h *harness) { h.quotas.set(alerting.QuotaUsage{KeyID: key1.Value, HourlyUsed: 0.85}) },
			normal: func(h *harness) { h.quotas.set(alerting.QuotaUsage{KeyID: key1.Value, HourlyUsed: 0.3}) },
		},
		{
			name: "unusual_activity spike", subject: key1,
			rule: timing(alerting.Rule{Name: "unusual", Type: alerting.UnusualActivity, Subject: alerting.SubjectKey,
				Window: 15 * time.Minute, Threshold: 5, MinRequests: 10, Direction: alerting.DirectionBoth,
				Severity: alerting.SeverityMedium}),
			tweak: []func(*alerting.Options){steadyHistory(alerting.SubjectKey, key1.Value, 100, 0)},
			bad: func(h *harness) { // 800 an hour against a usual 100
				h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 200})
			},
			normal: func(h *harness) {
				h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 26})
			},
		},
		{
			name: "unusual_activity drop", subject: key1,
			rule: timing(alerting.Rule{Name: "quiet", Type: alerting.UnusualActivity, Subject: alerting.SubjectKey,
				Window: 15 * time.Minute, Threshold: 5, MinRequests: 10, Direction: alerting.DirectionDrop,
				Severity: alerting.SeverityMedium}),
			tweak:  []func(*alerting.Options){steadyHistory(alerting.SubjectKey, key1.Value, 100, 0)},
			bad:    func(h *harness) { h.traffic.set(alerting.SubjectKey) }, // no traffic at all
			normal: func(h *harness) { h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 24}) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []alerting.Rule{tc.rule}, tc.tweak...)
			tc.normal(h)
			h.steps(3, tick)
			if n := len(h.open()); n != 0 {
				t.Fatalf("%d alerts on normal data", n)
			}

			tc.bad(h)
			h.step(tick)
			a := h.only()
			if a.State != alerting.StatePending || len(h.notified.all()) != 0 {
				t.Fatalf("first bad pass: state %s, %d notifications; want pending, none", a.State, len(h.notified.all()))
			}
			wantFP := alerting.Fingerprint(tc.rule.Name, tc.subject)
			if a.Fingerprint != wantFP || a.Subject != tc.subject || a.Summary == "" || a.Description == "" {
				t.Fatalf("alert %+v, want fingerprint %s for %s with text", a, wantFP, tc.subject)
			}
			h.steps(3, tick) // For (30s) is met
			if a = h.only(); a.State != alerting.StateFiring {
				t.Fatalf("after For: %s", a.State)
			}
			h.steps(6, tick) // still bad: no new alert, no new notification
			if got := h.notified.statuses(); !slices.Equal(got, []string{"firing"}) {
				t.Fatalf("notifications %v, want one firing", got)
			}

			tc.normal(h)
			h.step(tick)
			if a = h.only(); a.State != alerting.StateRecovering {
				t.Fatalf("first normal pass: %s, want recovering", a.State)
			}
			h.steps(6, tick) // KeepFiringFor (1m) elapses
			a = h.only()
			if a.State != alerting.StateResolved || a.ResolvedBy != "" {
				t.Fatalf("after KeepFiringFor: %+v", a)
			}
			if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "resolved"}) {
				t.Fatalf("notifications %v, want firing then resolved", got)
			}
			h.steps(6, tick)
			if got := len(h.notified.all()); got != 2 {
				t.Fatalf("%d notifications after resolving, want still 2", got)
			}
		})
	}
}

func TestPendingThatClearsIsForgottenSilently(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.step(tick)
	if len(h.open()) != 1 {
		t.Fatal("no pending alert")
	}
	errorRate(h, 1000, 0)
	h.step(tick)
	list, _ := h.ev.List(alerting.Query{})
	if len(list) != 0 || len(h.notified.all()) != 0 {
		t.Fatalf("alerts %+v, notifications %d; want none", list, len(h.notified.all()))
	}
}

func TestSameConditionIsOneAlert(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()}, func(o *alerting.Options) { o.RepeatInterval = -1 })
	errorRate(h, 1000, 100)
	h.steps(100, tick)
	list, _ := h.ev.List(alerting.Query{})
	if len(list) != 1 || list[0].State != alerting.StateFiring {
		t.Fatalf("alerts: %+v", list)
	}
	if n := len(h.notified.all()); n != 1 {
		t.Fatalf("%d notifications, want 1", n)
	}
}

func TestRepeatIntervalAndAcknowledge(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()}, func(o *alerting.Options) { o.RepeatInterval = time.Hour })
	errorRate(h, 1000, 100)
	h.steps(4, tick) // fires
	h.steps(360, tick)
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "firing"}) {
		t.Fatalf("after an hour unacknowledged: %v, want one repeat", got)
	}
	id := h.only().ID
	a, err := h.ev.Acknowledge(id, "ana", "on it")
	if err != nil {
		t.Fatal(err)
	}
	if a.Acknowledgement == nil || a.Acknowledgement.By != "ana" || a.Acknowledgement.Note != "on it" ||
		!a.Acknowledgement.At.Equal(h.now) || a.State != alerting.StateFiring {
		t.Fatalf("acknowledged alert: %+v", a)
	}
	h.steps(3*360, tick) // three hours
	if n := len(h.notified.all()); n != 2 {
		t.Fatalf("%d notifications after acknowledging, want no more than 2", n)
	}
	errorRate(h, 1000, 0)
	h.steps(7, tick)
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "firing", "resolved"}) {
		t.Fatalf("notifications %v: an acknowledged alert still announces its resolution", got)
	}
	if _, err := h.ev.Acknowledge(id, "ana", ""); !errors.Is(err, alerting.ErrNotFiring) {
		t.Fatalf("ack of a resolved alert: %v, want ErrNotFiring", err)
	}
}

func TestManualResolve(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.steps(4, tick)
	first := h.only()
	a, err := h.ev.Resolve(context.Background(), first.ID, "bo", "deploy rolled back")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != alerting.StateResolved || a.ResolvedBy != "bo" || !a.ResolvedAt.Equal(h.now) {
		t.Fatalf("resolved alert: %+v", a)
	}
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "resolved"}) {
		t.Fatalf("notifications %v", got)
	}
	if _, err := h.ev.Resolve(context.Background(), first.ID, "bo", ""); !errors.Is(err, alerting.ErrAlreadyResolved) {
		t.Fatalf("second resolve: %v", err)
	}

	// The condition still holds: the next pass opens a new alert, which
	// has to wait for For again.
	h.step(tick)
	open := h.open()
	if len(open) != 1 || open[0].ID == first.ID || open[0].Fingerprint != first.Fingerprint ||
		open[0].State != alerting.StatePending {
		t.Fatalf("after manual resolve: %+v", open)
	}
	h.steps(3, tick)
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "resolved", "firing"}) {
		t.Fatalf("notifications %v", got)
	}
	hist, err := h.ev.History(first.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := hist[len(hist)-1]
	if last.To != alerting.StateResolved || last.Actor != "bo" || last.Note != "deploy rolled back" {
		t.Fatalf("history %+v", hist)
	}
}

func TestResolvePendingDoesNotNotify(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.step(tick)
	if _, err := h.ev.Resolve(context.Background(), h.only().ID, "bo", ""); err != nil {
		t.Fatal(err)
	}
	if n := len(h.notified.all()); n != 0 {
		t.Fatalf("%d notifications for a pending alert resolved by hand", n)
	}
}

func TestFlappingWithinKeepFiringFor(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.steps(4, tick)
	id := h.only().ID
	for i := range 20 { // flips every pass, for over three minutes
		if i%2 == 0 {
			errorRate(h, 1000, 0)
		} else {
			errorRate(h, 1000, 100)
		}
		h.step(tick)
		if a := h.only(); a.ID != id || !a.Firing() {
			t.Fatalf("pass %d: %+v", i, a)
		}
	}
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing"}) {
		t.Fatalf("notifications %v, want one firing", got)
	}
	hist, _ := h.ev.History(id)
	recoveries := 0
	for _, tr := range hist {
		if tr.To == alerting.StateRecovering {
			recoveries++
		}
	}
	if recoveries != 10 {
		t.Fatalf("%d recoveries in history, want 10: %+v", recoveries, hist)
	}
}

func TestSaturdaySeverityBoost(t *testing.T) {
	cases := []struct {
		name string
		day  time.Time
		sev  alerting.Severity
		want alerting.Severity
	}{
		{"friday high", t0, alerting.SeverityHigh, alerting.SeverityHigh},
		{"saturday high", t0.Add(24 * time.Hour), alerting.SeverityHigh, alerting.SeverityCritical},
		{"saturday medium", t0.Add(24 * time.Hour), alerting.SeverityMedium, alerting.SeverityHigh},
		{"saturday critical stays", t0.Add(24 * time.Hour), alerting.SeverityCritical, alerting.SeverityCritical},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := errorSpikeRule()
			r.Severity = tc.sev
			h := newHarness(t, []alerting.Rule{r}, func(o *alerting.Options) { o.Calendar = saturdayBoost{} })
			h.now = tc.day
			errorRate(h, 1000, 100)
			h.steps(4, tick)
			got := h.notified.all()
			if len(got) != 1 || got[0].Severity != tc.want || got[0].Labels["severity"] != string(tc.want) {
				t.Fatalf("notified %+v, want severity %s", got, tc.want)
			}
			if rules := h.ev.Rules(); rules[0].Severity != tc.sev {
				t.Fatalf("the rule itself changed: %s", rules[0].Severity)
			}
		})
	}
}

// An alert that starts firing on a Friday evening and is still firing when
// the Saturday rule begins is raised a level and announced again; the
// Sunday does not lower it. An acknowledged alert is raised silently.
func TestSaturdayEscalatesFiringAlert(t *testing.T) {
	fridayEvening := time.Date(2026, 6, 5, 23, 59, 0, 0, time.UTC)
	for _, acked := range []bool{false, true} {
		t.Run(fmt.Sprintf("acknowledged=%v", acked), func(t *testing.T) {
			r := errorSpikeRule()
			r.Severity = alerting.SeverityMedium
			h := newHarness(t, []alerting.Rule{r}, func(o *alerting.Options) {
				o.Calendar = saturdayBoost{}
				o.RepeatInterval = 72 * time.Hour
			})
			h.now = fridayEvening
			errorRate(h, 1000, 100)
			h.steps(4, tick)
			a := h.only()
			if a.State != alerting.StateFiring || a.Severity != alerting.SeverityMedium {
				t.Fatalf("friday: %s %s, want firing medium", a.State, a.Severity)
			}
			if acked {
				if _, err := h.ev.Acknowledge(a.ID, "ana", "on it"); err != nil {
					t.Fatal(err)
				}
			}
			h.steps(6, tick) // past midnight: Saturday
			a = h.only()
			if a.Severity != alerting.SeverityHigh || a.Labels["severity"] != "high" {
				t.Fatalf("saturday: severity %s (label %s), want high", a.Severity, a.Labels["severity"])
			}
			var sevs []alerting.Severity
			for _, n := range h.notified.all() {
				sevs = append(sevs, n.Severity)
			}
			want := []alerting.Severity{alerting.SeverityMedium, alerting.SeverityHigh}
			if acked {
				want = want[:1]
			}
			if !slices.Equal(sevs, want) {
				t.Fatalf("notified severities %v, want %v", sevs, want)
			}
			hist, err := h.ev.History(a.ID)
			if err != nil {
				t.Fatal(err)
			}
			last := hist[len(hist)-1]
			if last.From != alerting.StateFiring || last.To != alerting.StateFiring || !strings.Contains(last.Note, "medium → high") {
				t.Fatalf("last transition %+v, want the escalation", last)
			}

			h.now = time.Date(2026, 6, 7, 0, 0, 5, 0, time.UTC) // Sunday
			h.steps(2, tick)
			if a := h.only(); a.Severity != alerting.SeverityHigh {
				t.Fatalf("sunday lowered the severity to %s", a.Severity)
			}
			if n := len(h.notified.all()); n != len(want) {
				t.Fatalf("%d notifications after Sunday began, want still %d", n, len(want))
			}
		})
	}
}

func TestRestartKeepsStateAndDoesNotRenotify(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()}, func(o *alerting.Options) { o.RepeatInterval = time.Hour })
	errorRate(h, 1000, 100)
	h.steps(4, tick)
	before := h.only()
	if _, err := h.ev.Acknowledge(before.ID, "ana", "seen"); err != nil {
		t.Fatal(err)
	}

	h.restart()
	after := h.only()
	if after.ID != before.ID || after.State != alerting.StateFiring || !after.FiredAt.Equal(before.FiredAt) ||
		after.Acknowledgement == nil || after.Acknowledgement.By != "ana" {
		t.Fatalf("restored %+v, had %+v", after, before)
	}
	h.steps(400, tick) // past the repeat interval, but acknowledged
	if n := len(h.notified.all()); n != 1 {
		t.Fatalf("%d notifications after restart, want the original 1", n)
	}
	errorRate(h, 1000, 0)
	h.steps(7, tick)
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "resolved"}) {
		t.Fatalf("notifications %v", got)
	}
}

func TestRestartKeepsPendingClock(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.steps(2, tick) // pending for 10s
	h.restart()
	h.step(tick) // 20s
	h.step(tick) // 30s: For met across the restart
	if a := h.only(); a.State != alerting.StateFiring {
		t.Fatalf("state %s, want firing: the restart reset For", a.State)
	}
}

func TestRestartWithRemovedRuleResolvesSilently(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.steps(4, tick)
	h.opts.Rules = []alerting.Rule{{Name: "other", Type: alerting.ErrorSpike}}
	h.restart()
	a := h.only()
	if a.State != alerting.StateResolved || a.ResolvedBy != "system" {
		t.Fatalf("alert of a removed rule: %+v", a)
	}
}

func TestSourceErrorLeavesAlertsAlone(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.steps(4, tick)
	h.traffic.fail(errors.New("metrics unavailable"))
	for range 20 {
		h.now = h.now.Add(tick)
		if err := h.ev.EvalAt(context.Background(), h.now); err == nil {
			t.Fatal("source error not reported")
		}
	}
	if a := h.only(); a.State != alerting.StateFiring {
		t.Fatalf("missing data changed the alert: %s", a.State)
	}
	if s := h.ev.Stats(); s.SourceErrors != 20 || s.Alerts[alerting.StateFiring] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestUnusualActivityCooldown(t *testing.T) {
	r := alerting.Rule{Name: "unusual", Type: alerting.UnusualActivity, Subject: alerting.SubjectKey,
		Window: 15 * time.Minute, Threshold: 5, MinRequests: 10, Direction: alerting.DirectionSpike,
		For: 0, KeepFiringFor: 0, Cooldown: time.Hour, Severity: alerting.SeverityMedium}
	h := newHarness(t, []alerting.Rule{r}, func(o *alerting.Options) {
		o.History = fakeHistory(func(alerting.SubjectKind, time.Time) map[string]alerting.HourStat {
			return map[string]alerting.HourStat{key1.Value: {Requests: 100}}
		})
	})
	spike := func() { h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 200}) }
	calm := func() { h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 25}) }
	spike()
	h.step(tick)
	calm()
	h.step(tick)
	spike()
	h.steps(6*30, tick) // 30 minutes of spike inside the cool-down
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "resolved"}) {
		t.Fatalf("during cool-down: %v", got)
	}
	h.steps(6*31, tick) // past the hour
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "resolved", "firing"}) {
		t.Fatalf("after cool-down: %v", got)
	}
}

func TestUnusualActivityNeedsVolume(t *testing.T) {
	r := alerting.Rule{Name: "unusual", Type: alerting.UnusualActivity, Subject: alerting.SubjectKey,
		Window: 15 * time.Minute, Threshold: 5, MinRequests: 100, Direction: alerting.DirectionBoth,
		Severity: alerting.SeverityMedium}
	h := newHarness(t, []alerting.Rule{r}, func(o *alerting.Options) {
		o.History = fakeHistory(func(alerting.SubjectKind, time.Time) map[string]alerting.HourStat {
			return map[string]alerting.HourStat{key1.Value: {Requests: 4}}
		})
	})
	// 60 requests an hour against a usual 4 is a huge score, but below
	// the volume floor; and a drop to 0 from 4 expects too few requests.
	h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: 15})
	h.steps(3, tick)
	h.traffic.set(alerting.SubjectKey)
	h.steps(3, tick)
	if list, _ := h.ev.List(alerting.Query{}); len(list) != 0 {
		t.Fatalf("alerts below the volume floor: %+v", list)
	}
}

func TestFilters(t *testing.T) {
	r := alerting.Rule{Name: "rl-free", Type: alerting.RateLimitExceeded, Subject: alerting.SubjectKey,
		Window: 5 * time.Minute, Threshold: 0.5, MinRequests: 10, Tiers: []string{"free"},
		Severity: alerting.SeverityLow}
	h := newHarness(t, []alerting.Rule{r})
	h.traffic.set(alerting.SubjectKey,
		alerting.Aggregate{Subject: key1, Tier: "free", Owner: "o1", Requests: 100, RateLimited: 90},
		alerting.Aggregate{Subject: alerting.Subject{Kind: alerting.SubjectKey, Value: "key_2"}, Tier: "enterprise", Requests: 100, RateLimited: 90},
	)
	h.step(tick)
	a := h.only()
	if a.Subject != key1 || a.Labels["tier"] != "free" || a.Labels["owner_id"] != "o1" || a.Labels["key_id"] != "key_1" {
		t.Fatalf("alert %+v", a)
	}
}

func TestAPIErrors(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()})
	errorRate(h, 1000, 100)
	h.step(tick)
	pending := h.only()
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"ack unknown", second(h.ev.Acknowledge("nope", "ana", "")), alerting.ErrNotFound},
		{"resolve unknown", second(h.ev.Resolve(ctx, "nope", "ana", "")), alerting.ErrNotFound},
		{"get unknown", second(h.ev.Get("nope")), alerting.ErrNotFound},
		{"history unknown", second(h.ev.History("nope")), alerting.ErrNotFound},
		{"ack pending", second(h.ev.Acknowledge(pending.ID, "ana", "")), alerting.ErrNotFiring},
		{"ack nobody", second(h.ev.Acknowledge(pending.ID, "", "")), alerting.ErrMissingActor},
		{"resolve nobody", second(h.ev.Resolve(ctx, pending.ID, "", "")), alerting.ErrMissingActor},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	h.steps(3, tick)
	if _, err := h.ev.Acknowledge(pending.ID, "ana", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ev.Acknowledge(pending.ID, "bo", ""); !errors.Is(err, alerting.ErrAlreadyAcknowledged) {
		t.Fatalf("second ack: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestListFiltersAndGet(t *testing.T) {
	rules := []alerting.Rule{errorSpikeRule(), {
		Name: "quota", Type: alerting.QuotaWarning, Subject: alerting.SubjectKey, Threshold: 0.8,
		Severity: alerting.SeverityLow,
	}}
	h := newHarness(t, rules)
	errorRate(h, 1000, 100)
	h.quotas.set(alerting.QuotaUsage{KeyID: "key_1", HourlyUsed: 0.9}, alerting.QuotaUsage{KeyID: "key_2", MonthlyUsed: 95, MonthlyQuota: 100})
	h.steps(4, tick)
	yes := true
	cases := []struct {
		name string
		q    alerting.Query
		want int
	}{
		{"all", alerting.Query{}, 3},
		{"firing", alerting.Query{States: []alerting.State{alerting.StateFiring}}, 3},
		{"resolved", alerting.Query{States: []alerting.State{alerting.StateResolved}}, 0},
		{"high", alerting.Query{Severities: []alerting.Severity{alerting.SeverityHigh}}, 1},
		{"quota type", alerting.Query{Types: []alerting.RuleType{alerting.QuotaWarning}}, 2},
		{"one key", alerting.Query{SubjectKind: alerting.SubjectKey, Subject: "key_2"}, 1},
		{"by rule", alerting.Query{Rule: "error-spike"}, 1},
		{"acknowledged", alerting.Query{Acknowledged: &yes}, 0},
		{"limit", alerting.Query{Limit: 2}, 2},
	}
	for _, tc := range cases {
		got, err := h.ev.List(tc.q)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d alerts (%v), want %d", tc.name, len(got), err, tc.want)
		}
	}
	list, _ := h.ev.List(alerting.Query{Subject: "key_2"})
	got, err := h.ev.Get(list[0].ID)
	if err != nil || got.ID != list[0].ID || got.Value != 0.95 {
		t.Fatalf("get: %+v %v", got, err)
	}
}

func TestCleanupRemovesOldResolvedAlerts(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()}, func(o *alerting.Options) { o.Retention = 24 * time.Hour })
	errorRate(h, 1000, 100)
	h.steps(4, tick)
	errorRate(h, 1000, 0)
	h.steps(7, tick)
	old := h.only()
	if old.State != alerting.StateResolved {
		t.Fatal("not resolved")
	}
	errorRate(h, 1000, 100) // a newer, open alert must survive
	h.step(tick)
	removed, err := h.ev.Cleanup(h.now.Add(25 * time.Hour))
	if err != nil || removed == 0 {
		t.Fatalf("cleanup removed %d (%v)", removed, err)
	}
	if _, err := h.ev.Get(old.ID); !errors.Is(err, alerting.ErrNotFound) {
		t.Fatalf("old alert still there: %v", err)
	}
	if open := h.open(); len(open) != 1 {
		t.Fatalf("open alerts after cleanup: %+v", open)
	}
}

func TestRunAndStop(t *testing.T) {
	h := newHarness(t, []alerting.Rule{errorSpikeRule()}, func(o *alerting.Options) {
		o.Interval = time.Millisecond
		o.Now = nil // wall clock
	})
	h.restart()
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- h.ev.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for h.ev.Stats().Evaluations < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run does not evaluate")
		}
		time.Sleep(time.Millisecond)
	}
	if err := h.ev.Run(ctx); !errors.Is(err, lifecycle.ErrAlreadyRunning) {
		t.Fatalf("second Run: %v", err)
	}
	h.ev.Stop()
	h.ev.Stop()
	<-h.ev.Done()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadSetups(t *testing.T) {
	s := newHarness(t, nil).store
	cases := []struct {
		name string
		opts alerting.Options
		want error
	}{
		{"invalid rule", alerting.Options{Store: s, Rules: []alerting.Rule{{Type: alerting.ErrorSpike, Threshold: 2}}}, alerting.ErrInvalidRule},
		{"duplicate names", alerting.Options{Store: s, Traffic: newFakeTraffic(),
			Rules: []alerting.Rule{{Type: alerting.ErrorSpike}, {Type: alerting.ErrorSpike}}}, alerting.ErrInvalidRule},
		{"no traffic source", alerting.Options{Store: s, Rules: []alerting.Rule{{Type: alerting.ErrorSpike}}}, alerting.ErrMissingSource},
		{"no history source", alerting.Options{Store: s, Traffic: newFakeTraffic(),
			Rules: []alerting.Rule{{Type: alerting.UnusualActivity}}}, alerting.ErrMissingSource},
		{"no quota source", alerting.Options{Store: s, Rules: []alerting.Rule{{Type: alerting.QuotaWarning}}}, alerting.ErrMissingSource},
	}
	for _, tc := range cases {
		if _, err := alerting.New(tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// keyNames is a KeyDirectory that counts its lookups.
type keyNames struct {
	names map[string][2]string // id -> name, owner
	asked map[string]int
}

func (k *keyNames) KeyName(id string) (name, owner string, ok bool) {
	k.asked[id]++
	n, ok := k.names[id]
	return n[0], n[1], ok
}

// An alert on a key names it as people know it, in its summary and its
// labels; the id stays in the subject and the key_id label.
func TestKeyAlertsNameTheKey(t *testing.T) {
	rl := alerting.Rule{Name: "rl", Type: alerting.RateLimitExceeded, Subject: alerting.SubjectKey,
		Window: 5 * time.Minute, Threshold: 0.5, MinRequests: 10, Severity: alerting.SeverityLow}
	rl2 := rl
	rl2.Name, rl2.Severity = "rl-high", alerting.SeverityHigh
	dir := &keyNames{names: map[string][2]string{key1.Value: {"planner app", "org_42"}}, asked: map[string]int{}}
	h := newHarness(t, []alerting.Rule{rl, rl2}, func(o *alerting.Options) { o.Keys = dir })
	unknown := alerting.Subject{Kind: alerting.SubjectKey, Value: "key_gone"}
	h.traffic.set(alerting.SubjectKey,
		alerting.Aggregate{Subject: key1, Requests: 100, RateLimited: 90},
		alerting.Aggregate{Subject: unknown, Owner: "org_7", Requests: 100, RateLimited: 90})
	h.step(tick)
	byKey := map[string]alerting.Alert{}
	for _, a := range h.open() {
		if a.Rule == "rl" {
			byKey[a.Subject.Value] = a
		}
	}
	named := byKey[key1.Value]
	if want := `key "planner app" of org_42 rate limited on 90% of its requests`; named.Summary != want {
		t.Errorf("summary %q, want %q", named.Summary, want)
	}
	if named.Subject != key1 || named.Labels["key_id"] != key1.Value || named.Labels["key_name"] != "planner app" || named.Labels["owner_id"] != "org_42" {
		t.Errorf("subject %v, labels %v", named.Subject, named.Labels)
	}
	if want := "key:key_gone of org_7 rate limited on 90% of its requests"; byKey["key_gone"].Summary != want {
		t.Errorf("a key the directory does not know: summary %q, want %q", byKey["key_gone"].Summary, want)
	}
	if dir.asked[key1.Value] != 1 || dir.asked["key_gone"] != 1 {
		t.Errorf("lookups in one pass with two rules: %v, want one per key", dir.asked)
	}
}
