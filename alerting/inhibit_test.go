package alerting_test

import (
	"context"
	"slices"
	"testing"

	"github.com/apiwarden/apiwarden/alerting"
)

// quotaPair is the default pair of quota rules: a warning at 80% and a
// critical one at 95% of the same key's quota.
func quotaPair() []alerting.Rule {
	return []alerting.Rule{
		{Name: "quota-warning", Type: alerting.QuotaWarning, Subject: alerting.SubjectKey, Threshold: 0.8, Severity: alerting.SeverityMedium},
		{Name: "quota-critical", Type: alerting.QuotaWarning, Subject: alerting.SubjectKey, Threshold: 0.95, Severity: alerting.SeverityHigh},
	}
}

// A key past both quota rules is announced once, by the higher rule; the
// lower alert stays open, marked inhibited, and is announced only if it
// still fires after the higher one resolves.
func TestInhibitionOfTheLowerRule(t *testing.T) {
	type phase struct {
		used float64
		want []string // notifications in this phase: "status rule", in ID order
	}
	cases := []struct {
		name   string
		phases []phase
	}{
		{"both at once, then down together", []phase{
			{0.97, []string{"firing quota-critical"}},
			{0.10, []string{"resolved quota-critical"}},
		}},
		{"both at once, then down to the warning band", []phase{
			{0.97, []string{"firing quota-critical"}},
			{0.85, []string{"resolved quota-critical", "firing quota-warning"}},
			{0.10, []string{"resolved quota-warning"}},
		}},
		{"warning first, then critical", []phase{
			{0.85, []string{"firing quota-warning"}},
			{0.97, []string{"firing quota-critical"}},
			{0.10, []string{"resolved quota-critical", "resolved quota-warning"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, quotaPair())
			for i, p := range tc.phases {
				before := len(h.notified.all())
				h.quotas.set(alerting.QuotaUsage{KeyID: "key_1", HourlyUsed: p.used})
				h.steps(2, tick)
				var got []string
				for _, a := range h.notified.all()[before:] {
					status := "resolved"
					if a.Firing() {
						status = "firing"
					}
					got = append(got, status+" "+a.Rule)
				}
				slices.Sort(got)
				want := slices.Sorted(slices.Values(p.want))
				if !slices.Equal(got, want) {
					t.Fatalf("phase %d (%.0f%%): notified %v, want %v", i, p.used*100, got, want)
				}
			}
		})
	}
}

// The inhibited alert is visible in the list with the ID of the alert that
// inhibits it, and the mark is gone once it is announced.
func TestInhibitedAlertIsListed(t *testing.T) {
	h := newHarness(t, quotaPair())
	h.quotas.set(alerting.QuotaUsage{KeyID: "key_1", HourlyUsed: 0.97})
	h.steps(2, tick)
	byRule := openByRule(h)
	warning, critical := byRule["quota-warning"], byRule["quota-critical"]
	if warning.State != alerting.StateFiring || warning.InhibitedBy != critical.ID || critical.InhibitedBy != "" {
		t.Fatalf("warning %s inhibited by %q, critical %q inhibited by %q", warning.State, warning.InhibitedBy, critical.ID, critical.InhibitedBy)
	}
	if !warning.LastNotifiedAt.IsZero() {
		t.Fatalf("inhibited alert has last_notified_at %v", warning.LastNotifiedAt)
	}

	h.restart() // the mark is stored with the alert
	h.quotas.set(alerting.QuotaUsage{KeyID: "key_1", HourlyUsed: 0.85})
	h.steps(2, tick)
	a, err := h.ev.Get(warning.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.InhibitedBy != "" || a.LastNotifiedAt.IsZero() {
		t.Fatalf("after the critical alert resolved: inhibited by %q, last notified %v", a.InhibitedBy, a.LastNotifiedAt)
	}
}

// Rules of equal severity do not inhibit each other.
func TestEqualSeveritiesDoNotInhibit(t *testing.T) {
	rules := quotaPair()
	rules[1].Severity = alerting.SeverityMedium
	h := newHarness(t, rules)
	h.quotas.set(alerting.QuotaUsage{KeyID: "key_1", HourlyUsed: 0.97})
	h.steps(2, tick)
	if got := h.notified.statuses(); !slices.Equal(got, []string{"firing", "firing"}) {
		t.Fatalf("notifications %v, want both rules", got)
	}
}

// Resolving an inhibited alert by hand tells receivers nothing: they never
// heard of it. Resolving the announced one does.
func TestResolvingAnInhibitedAlertByHandIsSilent(t *testing.T) {
	h := newHarness(t, quotaPair())
	h.quotas.set(alerting.QuotaUsage{KeyID: "key_1", HourlyUsed: 0.97})
	h.steps(2, tick)
	byRule := openByRule(h)
	before := len(h.notified.all())
	if _, err := h.ev.Resolve(context.Background(), byRule["quota-warning"].ID, "ana", "known"); err != nil {
		t.Fatal(err)
	}
	if n := len(h.notified.all()); n != before {
		t.Fatalf("%d notifications after resolving the inhibited alert, want still %d", n, before)
	}
	if _, err := h.ev.Resolve(context.Background(), byRule["quota-critical"].ID, "ana", "raised the quota"); err != nil {
		t.Fatal(err)
	}
	if got := h.notified.all(); len(got) != before+1 || got[len(got)-1].Rule != "quota-critical" || got[len(got)-1].Firing() {
		t.Fatalf("after resolving the announced alert: %d notifications", len(got))
	}
}

// openByRule returns the open alerts by rule name.
func openByRule(h *harness) map[string]alerting.Alert {
	h.t.Helper()
	byRule := map[string]alerting.Alert{}
	for _, a := range h.open() {
		byRule[a.Rule] = a
	}
	return byRule
}
