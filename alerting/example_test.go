package alerting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/store"
)

// errorCounts is a TrafficSource over fixed numbers; a real one reads the
// metrics package's realtime cells.
type errorCounts struct{ requests, errors5xx int64 }

func (c *errorCounts) Window(kind alerting.SubjectKind, _ time.Duration, _ time.Time) ([]alerting.Aggregate, error) {
	if kind != alerting.SubjectGlobal {
		return nil, nil
	}
	return []alerting.Aggregate{{
		Subject:  alerting.Subject{Kind: alerting.SubjectGlobal},
		Requests: c.requests, Errors5xx: c.errors5xx,
	}}, nil
}

// Example wires an evaluator to a store, a data source and a notification
// stage, and drives it with EvalAt through an error spike.
func Example() {
	dir, _ := os.MkdirTemp("", "alerting-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	traffic := &errorCounts{requests: 1000, errors5xx: 2}
	printer := alerting.StageFunc(func(_ context.Context, alerts ...alerting.Alert) ([]alerting.Alert, error) {
		for _, a := range alerts {
			fmt.Printf("%s %s (%s): %s\n", a.State, a.Rule, a.Severity, a.Summary)
		}
		return alerts, nil
	})
	ev, err := alerting.New(alerting.Options{
		Store: db,
		Rules: []alerting.Rule{{
			Name: "error-spike", Type: alerting.ErrorSpike, Subject: alerting.SubjectGlobal,
			Window: 5 * time.Minute, Threshold: 0.05, MinRequests: 50,
			For: time.Minute, KeepFiringFor: 2 * time.Minute, Severity: alerting.SeverityHigh,
		}},
		Traffic: traffic,
		Notify:  printer, // in production: a *Dispatcher
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	ctx := context.Background()
	now := time.Date(2026, 6, 5, 12, 0, 0, 0, time.UTC)
	run := func(d time.Duration) {
		for end := now.Add(d); now.Before(end); now = now.Add(10 * time.Second) {
			_ = ev.EvalAt(ctx, now)
		}
	}
	traffic.errors5xx = 90 // 9% of requests fail
	run(2 * time.Minute)
	traffic.errors5xx = 1
	run(3 * time.Minute)
	// Output:
	// firing error-spike (high): 5xx rate 9% on all traffic
	// resolved error-spike (high): 5xx rate 9% on all traffic
}

func ExampleRule_Validate() {
	r := alerting.Rule{Name: "errors", Type: alerting.ErrorSpike, Threshold: 5}.WithDefaults()
	fmt.Println(r.Validate())
	// Output:
	// alerting: rule errors: threshold is a fraction for error_spike and must be in (0, 1], e.g. 0.05 for 5%; got 5
}

func ExampleDefaultRules() {
	for _, r := range alerting.DefaultRules() {
		fmt.Printf("%-24s %-24s subject=%s severity=%s\n", r.Name, r.Type, r.Subject, r.Severity)
	}
	// Output:
	// rate-limit-exceeded      rate_limit_exceeded      subject=key severity=medium
	// unusual-activity         unusual_activity         subject=key severity=medium
	// error-spike              error_spike              subject=global severity=high
	// performance-degradation  performance_degradation  subject=route severity=medium
	// quota-warning            quota_warning            subject=key severity=medium
	// quota-critical           quota_warning            subject=key severity=high
}

// ExampleNewDispatcher gives each receiver its own queue: the evaluator's
// Notify hands alerts over without waiting for delivery.
func ExampleNewDispatcher() {
	got := make(chan alerting.WebhookMessage, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m alerting.WebhookMessage
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &m)
		got <- m
	}))
	defer srv.Close()

	hook, err := alerting.NewWebhook(alerting.WebhookConfig{URL: srv.URL})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := alerting.NewDispatcher([]alerting.Receiver{
		{Name: "ops-webhook", Notifier: hook, MinSeverity: alerting.SeverityMedium},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = d.Run(context.Background()) }()
	defer d.Stop()

	_, _ = d.Exec(context.Background(), alerting.Alert{
		ID: "0123456789abcdef-1", Fingerprint: "0123456789abcdef", Rule: "error-spike",
		Severity: alerting.SeverityHigh, State: alerting.StateFiring,
		Labels: map[string]string{"alertname": "error-spike", "severity": "high"},
	})
	m := <-got
	fmt.Println(m.Version, m.Receiver, m.Status, m.GroupKey, len(m.Alerts))
	// Output:
	// 4 ops-webhook firing {}:{alertname="error-spike"} 1
}

// ExampleEvaluator_Acknowledge shows the operations behind the alert
// routes of the admin API.
func ExampleEvaluator_Acknowledge() {
	dir, _ := os.MkdirTemp("", "alerting-example")
	defer os.RemoveAll(dir)
	db, _ := store.Open(dir, store.Options{NoSync: true})
	defer db.Close()

	ev, _ := alerting.New(alerting.Options{
		Store:   db,
		Rules:   []alerting.Rule{{Name: "errors", Type: alerting.ErrorSpike, Severity: alerting.SeverityHigh}},
		Traffic: &errorCounts{requests: 1000, errors5xx: 500},
	})
	now := time.Date(2026, 6, 5, 12, 0, 0, 0, time.UTC)
	_ = ev.EvalAt(context.Background(), now) // For is 0: fires at once

	firing, _ := ev.List(alerting.Query{States: []alerting.State{alerting.StateFiring}})
	a, err := ev.Acknowledge(firing[0].ID, "ana", "looking into it")
	fmt.Println(a.State, a.Acknowledgement.By, err)
	_, err = ev.Acknowledge(firing[0].ID, "bo", "")
	fmt.Println(err != nil)
	a, _ = ev.Resolve(context.Background(), firing[0].ID, "ana", "upstream fixed")
	fmt.Println(a.State, a.ResolvedBy)
	// Output:
	// firing ana <nil>
	// true
	// resolved ana
}

// A receiver that wants reminders at most every four hours, behind an
// evaluator that repeats hourly for another receiver: the hourly repeats
// in between are dropped, the fourth passes.
func ExampleNewRepeatStage() {
	mail := alerting.NewRepeatStage(4 * time.Hour)
	fired := time.Date(2026, 6, 6, 9, 0, 0, 0, time.UTC)
	a := alerting.Alert{ID: "quota-1", State: alerting.StateFiring, Severity: alerting.SeverityMedium}
	for h := range 5 {
		a.LastNotifiedAt = fired.Add(time.Duration(h) * time.Hour)
		out, _ := mail.Exec(context.Background(), a)
		fmt.Printf("%s: %d sent\n", a.LastNotifiedAt.Format("15:04"), len(out))
	}
	// Output:
	// 09:00: 1 sent
	// 10:00: 0 sent
	// 11:00: 0 sent
	// 12:00: 0 sent
	// 13:00: 1 sent
}
