package alerting_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
)

func TestDefaultRulesAreValidAndCoverEveryType(t *testing.T) {
	rules := alerting.DefaultRules()
	if err := alerting.ValidateRules(rules); err != nil {
		t.Fatal(err)
	}
	seen := map[alerting.RuleType]bool{}
	for _, r := range rules {
		seen[r.Type] = true
	}
	for _, typ := range alerting.RuleTypes() {
		if !seen[typ] {
			t.Errorf("no default rule of type %s", typ)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	r := alerting.Rule{Type: alerting.ErrorSpike}.WithDefaults()
	if r.Name != "error_spike" || r.Window != 5*time.Minute || r.Threshold != 0.05 ||
		r.Severity != alerting.SeverityHigh || r.Subject != alerting.SubjectGlobal || r.For != 0 {
		t.Fatalf("%+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	q := alerting.Rule{Type: alerting.QuotaWarning, Threshold: 0.9}.WithDefaults()
	if q.Threshold != 0.9 || q.Subject != alerting.SubjectKey {
		t.Fatalf("%+v", q)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	base := func(mod func(*alerting.Rule)) alerting.Rule {
		r := alerting.Rule{Name: "r", Type: alerting.ErrorSpike, Window: 5 * time.Minute, Threshold: 0.05,
			Severity: alerting.SeverityHigh, Subject: alerting.SubjectGlobal}
		mod(&r)
		return r
	}
	cases := []struct {
		field string
		rule  alerting.Rule
	}{
		{"name", base(func(r *alerting.Rule) { r.Name = "" })},
		{"name", base(func(r *alerting.Rule) { r.Name = "has space" })},
		{"type", base(func(r *alerting.Rule) { r.Type = "cpu_high" })},
		{"severity", base(func(r *alerting.Rule) { r.Severity = "urgent" })},
		{"subject", base(func(r *alerting.Rule) { r.Subject = "tenant" })},
		{"subject", base(func(r *alerting.Rule) { r.Type, r.Subject, r.Window = alerting.QuotaWarning, alerting.SubjectRoute, 0 })},
		{"window", base(func(r *alerting.Rule) { r.Window = 0 })},
		{"window", base(func(r *alerting.Rule) { r.Window = 48 * time.Hour })},
		{"threshold", base(func(r *alerting.Rule) { r.Threshold = 5 })},
		{"threshold", base(func(r *alerting.Rule) { r.Threshold = 0 })},
		{"threshold", base(func(r *alerting.Rule) { r.Type, r.Threshold = alerting.PerformanceDegradation, 0 })},
		{"baseline_factor", base(func(r *alerting.Rule) { r.Type, r.BaselineFactor = alerting.PerformanceDegradation, 0.5 })},
		{"baseline_factor", base(func(r *alerting.Rule) { r.BaselineFactor = 3 })},
		{"threshold", base(func(r *alerting.Rule) {
			r.Type, r.Direction, r.Threshold = alerting.UnusualActivity, alerting.DirectionBoth, -1
		})},
		{"direction", base(func(r *alerting.Rule) { r.Type, r.Threshold = alerting.UnusualActivity, 5 })},
		{"direction", base(func(r *alerting.Rule) { r.Direction = alerting.DirectionSpike })},
		{"quota", base(func(r *alerting.Rule) { r.Quota = alerting.QuotaHourly })},
		{"min_requests", base(func(r *alerting.Rule) { r.MinRequests = -1 })},
		{"for", base(func(r *alerting.Rule) { r.For = -time.Second })},
		{"keep_firing_for", base(func(r *alerting.Rule) { r.KeepFiringFor = -time.Second })},
		{"cooldown", base(func(r *alerting.Rule) { r.Cooldown = -time.Second })},
		{"routes", base(func(r *alerting.Rule) { r.Routes = []string{"/api/*"} })},
		{"routes", base(func(r *alerting.Rule) { r.Subject, r.Routes = alerting.SubjectRoute, []string{"/api/["} })},
		{"tiers", base(func(r *alerting.Rule) { r.Subject, r.Tiers = alerting.SubjectRoute, []string{"free"} })},
	}
	for _, tc := range cases {
		err := tc.rule.Validate()
		var re *alerting.RuleError
		if !errors.As(err, &re) || !errors.Is(err, alerting.ErrInvalidRule) {
			t.Errorf("%s: got %v", tc.field, err)
			continue
		}
		if !strings.Contains(err.Error(), " "+tc.field+" ") {
			t.Errorf("error does not name %s: %v", tc.field, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := alerting.Rule{Name: "x", Type: alerting.ErrorSpike, Threshold: 3, MinRequests: -1}.Validate()
	for _, field := range []string{"severity", "subject", "window", "threshold", "min_requests"} {
		if !strings.Contains(err.Error(), " "+field+" ") {
			t.Errorf("missing %s in %v", field, err)
		}
	}
}

func TestSeverityRaise(t *testing.T) {
	cases := []struct {
		from  alerting.Severity
		steps int
		want  alerting.Severity
	}{
		{alerting.SeverityLow, 1, alerting.SeverityMedium},
		{alerting.SeverityMedium, 1, alerting.SeverityHigh},
		{alerting.SeverityHigh, 1, alerting.SeverityCritical},
		{alerting.SeverityCritical, 1, alerting.SeverityCritical},
		{alerting.SeverityLow, 10, alerting.SeverityCritical},
		{alerting.SeverityHigh, 0, alerting.SeverityHigh},
		{alerting.SeverityMedium, -5, alerting.SeverityLow},
	}
	for _, tc := range cases {
		if got := tc.from.Raise(tc.steps); got != tc.want {
			t.Errorf("%s + %d = %s, want %s", tc.from, tc.steps, got, tc.want)
		}
	}
	if _, err := alerting.ParseSeverity("urgent"); err == nil {
		t.Error("urgent parsed")
	}
}

func TestRuleJSONUsesDurationStrings(t *testing.T) {
	b, err := json.Marshal(alerting.DefaultRules()[1])
	if err != nil {
		t.Fatal(err)
	}
	var back alerting.Rule
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Window != 15*time.Minute || back.Cooldown != time.Hour || back.Name != "unusual-activity" || back.Direction != "both" {
		t.Fatalf("round trip: %+v", back)
	}
	for _, want := range []string{`"window":"15m0s"`, `"for":"10m0s"`, `"cooldown":"1h0m0s"`, `"type":"unusual_activity"`, `"direction":"both"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
