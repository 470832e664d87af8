package app

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
)

// pipeline is the app's alerting fed through the real recording path:
// records go to the metrics writer and the realtime ring, the evaluator
// reads the ring, the hourly rollups and the limiter. The clock is a
// variable the test moves; nothing sleeps.
type pipeline struct {
	t   *testing.T
	a   *App
	now time.Time
	rec metrics.Tee
}

func newPipeline(t *testing.T, start time.Time) *pipeline {
	p := &pipeline{t: t, now: start}
	cfg := config.Default()
	cfg.Server.Listen, cfg.Server.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Server.DataDir = t.TempDir()
	cfg.Security.AdminToken, cfg.Security.KeySecret = "tok", "pipeline-secret-0123456789"
	cfg.Tiers["tiny"] = config.Tier{RequestsPerHour: 20, BurstPerMinute: 20}
	a, err := New(cfg, Options{Now: func() time.Time { return p.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.adminLn.Close()
		if a.enforceLn != nil {
			a.enforceLn.Close()
		}
		a.rec.Stop()
		a.keys.Close()
		a.st.Close()
	})
	p.a, p.rec = a, metrics.Tee{Recorder: a.rec, Live: a.realtime}
	return p
}

type trafficMix func(sec int, emit func(metrics.Record))

// run advances the clock second by second for d, emitting the mix's
// records at each second, flushing the writer every minute and evaluating
// the rules every 10 seconds.
func (p *pipeline) run(d time.Duration, mix trafficMix) {
	p.t.Helper()
	for sec := 0; sec < int(d/time.Second); sec++ {
		p.now = p.now.Add(time.Second)
		mix(sec, func(r metrics.Record) {
			r.Time = p.now
			if r.Method == "" {
				r.Method = "GET"
			}
			if r.Decision == decision.None {
				r.Decision = decision.Valid
			}
			p.rec.Record(&r)
		})
		if sec%60 == 59 {
			if err := p.a.rec.Flush(); err != nil {
				p.t.Fatal(err)
			}
		}
		if sec%10 == 9 {
			if err := p.a.alerts.EvalAt(context.Background(), p.now); err != nil {
				p.t.Fatal(err)
			}
		}
	}
}

func (p *pipeline) alerts(states ...alerting.State) map[string][]alerting.Alert {
	list, err := p.a.alerts.List(alerting.Query{States: states})
	if err != nil {
		p.t.Fatal(err)
	}
	byRule := map[string][]alerting.Alert{}
	for _, a := range list {
		byRule[a.Rule] = append(byRule[a.Rule], a)
	}
	return byRule
}

func req(key, route string, status int, latency time.Duration) metrics.Record {
	r := metrics.Record{KeyID: key, OwnerID: "org_" + key, Tier: "basic", Route: route, Path: route, Status: status, Latency: latency}
	if status == 429 {
		r.Decision = decision.RateLimited
	}
	return r
}

// Each of the five alert types fires from traffic recorded through the
// real pipeline and resolves by itself once the traffic is normal again.
func TestEveryAlertTypeFiresAndResolvesThroughThePipeline(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) // a Tuesday in November: no calendar boost
	p := newPipeline(t, start.Add(-26*time.Hour))

	// History for key "steady": 100 requests an hour for the past day,
	// written through the metrics writer as hourly rollups.
	var past []metrics.Record
	for h := range 26 {
		for i := range 100 {
			r := req("steady", "/api/guests/*", 200, 40*time.Millisecond)
			r.Time = start.Add(-26*time.Hour + time.Duration(h)*time.Hour + time.Duration(i)*36*time.Second)
			r.Method, r.Decision = "GET", decision.Valid
			past = append(past, r)
		}
	}
	if n := p.a.rec.RecordBatch(past); n != len(past) {
		t.Fatalf("history: %d of %d records taken", n, len(past))
	}
	if err := p.a.rec.Flush(); err != nil {
		t.Fatal(err)
	}
	p.now = start

	normal := func(sec int, emit func(metrics.Record)) {
		emit(req("abuser", "/api/forms/*", 200, 50*time.Millisecond))
		emit(req("abuser", "/api/forms/*", 200, 60*time.Millisecond))
		emit(req("partner", "/api/forms/*", 200, 45*time.Millisecond))
		if sec%36 == 0 {
			emit(req("steady", "/api/guests/*", 200, 40*time.Millisecond)) // its usual 100 an hour
		}
	}
	p.run(10*time.Minute, normal)
	if firing := p.alerts(alerting.StateFiring, alerting.StatePending); len(firing) != 0 {
		t.Fatalf("alerts on normal traffic: %v", firing)
	}

	// Trouble: the abuser is mostly rate limited, the partner's calls fail,
	// photo uploads are slow, the steady key bursts, and a tiny-tier key
	// empties its hourly bucket.
	quotaKey := "tinykey"
	for range 20 {
		if r := p.a.limits.AllowAt(p.now, limiter.Request{Subject: limiter.KeySubject(quotaKey), Tier: "tiny", Cost: 1}); !r.Allowed {
			t.Fatal("tiny key refused while draining its bucket")
		}
	}
	trouble := func(sec int, emit func(metrics.Record)) {
		emit(req("abuser", "/api/forms/*", 200, 50*time.Millisecond))
		for range 4 {
			emit(req("abuser", "/api/forms/*", 429, time.Millisecond))
		}
		emit(req("partner", "/api/forms/*", 503, 30*time.Millisecond))
		emit(req("partner", "/api/photos/upload", 201, 3*time.Second))
		for range 5 {
			emit(req("steady", "/api/guests/*", 200, 40*time.Millisecond))
		}
	}
	p.run(12*time.Minute, trouble)
	// The tiny key's bucket refills while the trouble lasts, so its quota
	// alerts may already be recovering.
	firing := p.alerts(alerting.StateFiring, alerting.StateRecovering)
	want := map[string]string{
		"rate-limit-exceeded":     "abuser",
		"error-spike":             "",
		"performance-degradation": "/api/photos/upload",
		"unusual-activity":        "steady",
		"quota-critical":          quotaKey,
		"quota-warning":           quotaKey,
	}
	for rule, subject := range want {
		got := firing[rule]
		if len(got) != 1 || got[0].Subject.Value != subject {
			t.Errorf("rule %s: firing %+v, want one alert for %q", rule, got, subject)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Back to normal: every alert resolves by itself, once.
	p.run(45*time.Minute, normal)
	if open := p.alerts(alerting.StatePending, alerting.StateFiring, alerting.StateRecovering); len(open) != 0 {
		for rule, as := range open {
			t.Errorf("rule %s still open: %s since %s", rule, as[0].State, as[0].ActiveAt)
		}
	}
	resolved := p.alerts(alerting.StateResolved)
	for rule := range want {
		if len(resolved[rule]) != 1 {
			t.Errorf("rule %s: %d resolved alerts, want 1", rule, len(resolved[rule]))
		}
	}
}

// On a Saturday the wedding-day calendar rule raises an error spike from
// high to critical.
func TestSaturdayRaisesErrorSpikeSeverity(t *testing.T) {
	for _, c := range []struct {
		day  time.Time
		want alerting.Severity
	}{
		{time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), alerting.SeverityHigh},     // Friday
		{time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), alerting.SeverityCritical}, // Saturday
	} {
		p := newPipeline(t, c.day)
		p.run(3*time.Minute, func(_ int, emit func(metrics.Record)) {
			emit(req("a", "/api/forms/*", 200, 20*time.Millisecond))
			emit(req("b", "/api/forms/*", 502, 20*time.Millisecond))
		})
		spikes := p.alerts(alerting.StateFiring)["error-spike"]
		if len(spikes) != 1 || spikes[0].Severity != c.want {
			t.Errorf("%s: error-spike alerts %+v, want one of severity %s", c.day.Weekday(), spikes, c.want)
		}
	}
}
