package app_test

import (
	"reflect"
	"testing"

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
