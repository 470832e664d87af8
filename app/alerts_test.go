package app_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
)

// The defaults documented in config.example.toml are the evaluator's own
// defaults: the two lists cannot drift apart.
func TestDefaultAlertRulesMatchTheEvaluator(t *testing.T) {
	got, err := app.AlertRules(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	want := alerting.DefaultRules()
	for i := range want {
		want[i] = want[i].WithDefaults()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config defaults differ from alerting.DefaultRules:\n got %+v\nwant %+v", got, want)
	}
}

func TestReceiversFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Alerts.Notify = []config.NotifyRule{
		{Type: "webhook", URL: "http://127.0.0.1:9/hook", MinSeverity: "high"},
		{Type: "slack", URL: "https://hooks.example.invalid/x"},
		{Type: "email", SMTPHost: "127.0.0.1", SMTPPort: 2525, From: "a@example.com", To: []string{"b@example.com"}},
	}
	rs, err := app.Receivers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].MinSeverity != alerting.SeverityHigh || rs[2].Name != "email-2" {
		t.Fatalf("receivers %+v", rs)
	}
}

// The evaluator repeats at the shortest receiver interval; each receiver
// keeps its own, or the global one.
func TestRepeatIntervals(t *testing.T) {
	hook := func(every time.Duration) config.NotifyRule {
		return config.NotifyRule{Type: "webhook", URL: "http://127.0.0.1:9/hook", RepeatInterval: config.Duration(every)}
	}
	cases := []struct {
		name      string
		global    time.Duration
		notify    []config.NotifyRule
		evaluator time.Duration
		receivers []time.Duration
	}{
		{"no receivers", 4 * time.Hour, nil, 4 * time.Hour, nil},
		{"all on the global interval", 4 * time.Hour, []config.NotifyRule{hook(0), hook(0)}, 4 * time.Hour, []time.Duration{4 * time.Hour, 4 * time.Hour}},
		{"one faster", 4 * time.Hour, []config.NotifyRule{hook(time.Hour), hook(0)}, time.Hour, []time.Duration{time.Hour, 4 * time.Hour}},
		{"one slower", 4 * time.Hour, []config.NotifyRule{hook(24 * time.Hour), hook(0)}, 4 * time.Hour, []time.Duration{24 * time.Hour, 4 * time.Hour}},
		{"global 0 is the default", 0, []config.NotifyRule{hook(0), hook(8 * time.Hour)}, alerting.DefaultRepeatInterval,
			[]time.Duration{alerting.DefaultRepeatInterval, 8 * time.Hour}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Alerts.RepeatInterval = config.Duration(tc.global)
			cfg.Alerts.Notify = tc.notify
			if got := app.RepeatInterval(cfg); got != tc.evaluator {
				t.Errorf("evaluator repeats every %v, want %v", got, tc.evaluator)
			}
			rs, err := app.Receivers(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for _, r := range rs {
				got = append(got, r.RepeatInterval)
			}
			if !slices.Equal(got, tc.receivers) {
				t.Errorf("receivers repeat every %v, want %v", got, tc.receivers)
			}
		})
	}
}
