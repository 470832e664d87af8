package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

// A single instance's keys, imported into a cluster, work on both of its
// instances (fresh data directories): the issued secret passes, the
// revoked key is refused.
func TestClusterImportedKeysWorkOnEveryInstance(t *testing.T) {
	dir := t.TempDir()
	single, stop := startApp(t, func(c *config.Config) {
		c.Server.DataDir = dir
		c.Tiers["enterprise"] = config.Tier{RequestsPerHour: 1_000_000, BurstPerMinute: 100_000}
	})
	kept, revoked := createKey(t, single), createKey(t, single)
	if status, body := adminCall(t, single, "DELETE", "/admin/v1/keys/"+revoked.Key.ID, ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	stop()

	url := pg.Database(t)
	report, err := importDataDir(t, dir, url)
	if err != nil || report.Steps[0].Imported != 2 {
		t.Fatalf("import: %+v, %v", report, err)
	}

	a, _ := startClusterApp(t, url, "a", "")
	b, _ := startClusterApp(t, url, "b", "")
	for name, in := range map[string]*app.App{"a": a, "b": b} {
		if got := checkKey(t, in, kept.Secret); got != "VALID" {
			t.Errorf("imported key on %s: %s, want VALID", name, got)
		}
		if got := checkKey(t, in, revoked.Secret); got != "REVOKED" {
			t.Errorf("revoked imported key on %s: %s, want REVOKED", name, got)
		}
	}
}

// importDataDir imports the data file in dir into the cluster at url
// with the key secret startApp gives every instance.
func importDataDir(t *testing.T, dir, url string) (cluster.ImportReport, error) {
	t.Helper()
	src, err := store.OpenReadOnly(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := cluster.Open(ctx, cluster.Options{URL: url, KeySecretCheck: keys.SecretCheck([]byte("telemetry-test-secret-0123"))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.Import(ctx, src, cluster.ImportOptions{})
}

// errorRate is a TrafficSource whose global error rate is fixed: 20 of
// 100 requests answered 5xx.
type errorRate struct{}

func (errorRate) Window(alerting.SubjectKind, time.Duration, time.Time) ([]alerting.Aggregate, error) {
	return []alerting.Aggregate{{Requests: 100, Errors5xx: 20}}, nil
}

// singleInstanceAlerts writes a single instance's data file in dir whose
// alerts a real evaluator made: "spike" firing and acknowledged by dana,
// "outage" firing. It returns the alerts by rule and their history.
func singleInstanceAlerts(t *testing.T, dir string) (map[string]alerting.Alert, map[string][]alerting.Transition) {
	t.Helper()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Add(-time.Hour).Truncate(time.Second)
	var rules []alerting.Rule
	for _, name := range []string{"spike", "outage"} {
		rules = append(rules, alerting.Rule{Name: name, Type: alerting.ErrorSpike, Subject: alerting.SubjectGlobal,
			Window: 5 * time.Minute, Threshold: 0.05, MinRequests: 50, Severity: alerting.SeverityHigh, Cooldown: time.Minute})
	}
	ev, err := alerting.New(alerting.Options{Store: st, Rules: rules, Traffic: errorRate{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.EvalAt(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	byRule := map[string]alerting.Alert{}
	list, err := ev.List(alerting.Query{})
	if err != nil || len(list) != 2 {
		t.Fatalf("single instance: %d alerts (%v), want 2", len(list), err)
	}
	for _, a := range list {
		byRule[a.Rule] = a
	}
	now = now.Add(10 * time.Second)
	if byRule["spike"], err = ev.Acknowledge(byRule["spike"].ID, "dana", "looking"); err != nil {
		t.Fatal(err)
	}
	history := map[string][]alerting.Transition{}
	for rule, a := range byRule {
		if history[rule], err = ev.History(a.ID); err != nil {
			t.Fatal(err)
		}
	}
	return byRule, history
}

// A single instance's alerts, imported into a cluster, are listed by a
// cluster instance's admin API with their acknowledgement and history.
func TestClusterImportedAlertsListedByTheAdminAPI(t *testing.T) {
	dir := t.TempDir()
	want, wantHistory := singleInstanceAlerts(t, dir)
	url := pg.Database(t)
	report, err := importDataDir(t, dir, url)
	if err != nil || report.Steps[1].Step != "alerts" || report.Steps[1].Imported != 2 || report.Steps[1].EventsImported != 5 {
		t.Fatalf("import: %+v, %v; want 2 alerts and 5 transitions", report, err)
	}

	// The instance's own evaluation may resolve the alerts (its rules and
	// traffic are not the single instance's); what was imported stays.
	in, _ := startClusterApp(t, url, "a", "")
	listed := map[string]bool{}
	for _, a := range listAlerts(t, in).Alerts {
		listed[a.ID] = true
	}
	for rule, a := range want {
		if !listed[a.ID] {
			t.Errorf("imported alert %s (%s) not listed", a.ID, rule)
		}
		status, body := adminCall(t, in, "GET", "/admin/v1/alerts/"+a.ID, "")
		var detail struct {
			Alert   alerting.Alert        `json:"alert"`
			History []alerting.Transition `json:"history"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &detail) != nil {
			t.Fatalf("alert %s: %d %s", a.ID, status, body)
		}
		if got, ack := detail.Alert.Acknowledgement, a.Acknowledgement; (got == nil) != (ack == nil) ||
			got != nil && (got.By != ack.By || got.Note != ack.Note || !got.At.Equal(ack.At)) {
			t.Errorf("%s's acknowledgement: %+v, want %+v", rule, detail.Alert.Acknowledgement, a.Acknowledgement)
		}
		if len(detail.History) < len(wantHistory[rule]) || !sameTransitions(detail.History[:len(wantHistory[rule])], wantHistory[rule]) {
			t.Errorf("%s's history: %+v, want it to begin with %+v", rule, detail.History, wantHistory[rule])
		}
	}
	if want["spike"].Acknowledgement == nil || want["spike"].Acknowledgement.By != "dana" {
		t.Fatalf("the single instance's spike was not acknowledged: %+v", want["spike"])
	}
}

// sameTransitions compares two histories field by field, times by
// instant.
func sameTransitions(a, b []alerting.Transition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.At.Equal(y.At) {
			return false
		}
		x.At, y.At = time.Time{}, time.Time{}
		if x != y {
			return false
		}
	}
	return true
}
