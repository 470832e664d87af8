package alerting_test

import (
	"errors"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
)

func TestSetRulesKeepsAlertsOfRulesThatStay(t *testing.T) {
	spike := alerting.Rule{Name: "errors", Type: alerting.ErrorSpike, Subject: alerting.SubjectGlobal,
		Window: time.Minute, Threshold: 0.1, Severity: alerting.SeverityHigh}
	h := newHarness(t, []alerting.Rule{spike})
	h.traffic.set(alerting.SubjectGlobal, alerting.Aggregate{Requests: 100, Errors5xx: 50})
	h.step(10 * time.Second)
	firing, _ := h.ev.List(alerting.Query{States: []alerting.State{alerting.StateFiring}})
	if len(firing) != 1 {
		t.Fatalf("firing %+v", firing)
	}

	// The same rule with another threshold: the alert carries on.
	changed := spike
	changed.Threshold = 0.2
	if err := h.ev.SetRules([]alerting.Rule{changed}); err != nil {
		t.Fatal(err)
	}
	if got := h.ev.Rules(); len(got) != 1 || got[0].Threshold != 0.2 {
		t.Fatalf("rules after reload %+v", got)
	}
	h.step(10 * time.Second)
	if again, _ := h.ev.List(alerting.Query{States: []alerting.State{alerting.StateFiring}}); len(again) != 1 || again[0].ID != firing[0].ID {
		t.Fatalf("after a reload that kept the rule: %+v", again)
	}

	// A bad rule set changes nothing.
	if err := h.ev.SetRules([]alerting.Rule{{Name: "x", Type: "meteor"}}); !errors.Is(err, alerting.ErrInvalidRule) {
		t.Fatalf("invalid rules: %v", err)
	}
	if got := h.ev.Rules(); len(got) != 1 || got[0].Name != "errors" {
		t.Fatalf("rules after a rejected reload %+v", got)
	}

	// The rule removed: its alert is resolved, quietly.
	before := len(h.notified.all())
	quota := alerting.Rule{Name: "quota", Type: alerting.QuotaWarning, Subject: alerting.SubjectKey, Threshold: 0.8, Severity: alerting.SeverityLow}
	if err := h.ev.SetRules([]alerting.Rule{quota}); err != nil {
		t.Fatal(err)
	}
	got, err := h.ev.Get(firing[0].ID)
	if err != nil || got.State != alerting.StateResolved || got.ResolvedBy != "system" {
		t.Fatalf("alert of a removed rule: %+v %v", got, err)
	}
	h.step(10 * time.Second)
	if n := len(h.notified.all()); n != before {
		t.Fatalf("%d notifications after removing the rule, want none", n-before)
	}
}
