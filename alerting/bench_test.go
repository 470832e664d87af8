package alerting_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// benchWorld is 10,000 keys of 500 owners and 50 routes, with 1% of keys
// and 2 routes misbehaving so some alerts are open.
type benchWorld struct {
	windows map[alerting.SubjectKind][]alerting.Aggregate
	hours   map[alerting.SubjectKind]map[string]alerting.HourStat
	quotas  []alerting.QuotaUsage
}

func newBenchWorld(keys, routes int) *benchWorld {
	w := &benchWorld{
		windows: map[alerting.SubjectKind][]alerting.Aggregate{},
		hours:   map[alerting.SubjectKind]map[string]alerting.HourStat{},
	}
	for _, kind := range []alerting.SubjectKind{alerting.SubjectGlobal, alerting.SubjectKey, alerting.SubjectOwner, alerting.SubjectRoute} {
		w.hours[kind] = map[string]alerting.HourStat{}
	}
	tiers := []string{"free", "basic", "premium", "enterprise"}
	owners := map[string]*alerting.Aggregate{}
	var total alerting.Aggregate
	for i := range keys {
		id := fmt.Sprintf("key_%05d", i)
		owner := fmt.Sprintf("owner_%03d", i%500)
		a := alerting.Aggregate{
			Subject: alerting.Subject{Kind: alerting.SubjectKey, Value: id},
			Owner:   owner, Tier: tiers[i%4],
			Requests: 100, Errors5xx: 1, RateLimited: 0, P95: 80 * time.Millisecond,
		}
		if i%100 == 0 { // misbehaving: errors, rate limiting and a spike
			a.Requests, a.Errors5xx, a.RateLimited = 1000, 300, 600
		}
		w.windows[alerting.SubjectKey] = append(w.windows[alerting.SubjectKey], a)
		w.hours[alerting.SubjectKey][id] = alerting.HourStat{Requests: 400, P95: 80 * time.Millisecond}
		u := alerting.QuotaUsage{KeyID: id, Owner: owner, Tier: a.Tier, HourlyUsed: 0.2, MonthlyUsed: 1000, MonthlyQuota: 100000}
		if i%100 == 0 {
			u.HourlyUsed = 0.97
		}
		w.quotas = append(w.quotas, u)
		if owners[owner] == nil {
			owners[owner] = &alerting.Aggregate{Subject: alerting.Subject{Kind: alerting.SubjectOwner, Value: owner}}
		}
		o := owners[owner]
		o.Requests += a.Requests
		o.Errors5xx += a.Errors5xx
		o.RateLimited += a.RateLimited
		o.P95 = 80 * time.Millisecond
		total.Requests += a.Requests
		total.Errors5xx += a.Errors5xx
	}
	for _, o := range owners {
		w.windows[alerting.SubjectOwner] = append(w.windows[alerting.SubjectOwner], *o)
		w.hours[alerting.SubjectOwner][o.Subject.Value] = alerting.HourStat{Requests: o.Requests * 4, P95: o.P95}
	}
	for i := range routes {
		route := fmt.Sprintf("/api/r%02d/*", i)
		a := alerting.Aggregate{
			Subject:  alerting.Subject{Kind: alerting.SubjectRoute, Value: route},
			Requests: total.Requests / int64(routes), Errors5xx: 10, P95: 120 * time.Millisecond,
		}
		if i < 2 {
			a.P95 = 3 * time.Second
		}
		w.windows[alerting.SubjectRoute] = append(w.windows[alerting.SubjectRoute], a)
		w.hours[alerting.SubjectRoute][route] = alerting.HourStat{Requests: a.Requests * 4, P95: 120 * time.Millisecond}
	}
	total.Subject = alerting.Subject{Kind: alerting.SubjectGlobal}
	w.windows[alerting.SubjectGlobal] = []alerting.Aggregate{total}
	w.hours[alerting.SubjectGlobal][""] = alerting.HourStat{Requests: total.Requests * 4, P95: 100 * time.Millisecond}
	return w
}

func (w *benchWorld) Window(kind alerting.SubjectKind, _ time.Duration, _ time.Time) ([]alerting.Aggregate, error) {
	return w.windows[kind], nil
}

// Hours passes the same rollups for every hour, hour by hour: the order
// of an in-memory source, which makes the evaluator look every row up
// (the bbolt-backed one passes a subject's hours together).
func (w *benchWorld) Hours(kind alerting.SubjectKind, hours []time.Time, fn func(string, time.Time, alerting.HourStat)) error {
	for _, at := range hours {
		for subject, st := range w.hours[kind] {
			fn(subject, at, st)
		}
	}
	return nil
}

func (w *benchWorld) Quotas(time.Time) ([]alerting.QuotaUsage, error) { return w.quotas, nil }

// benchRules are the defaults (one or two of every type) plus rules on
// the other subject kinds.
func benchRules() []alerting.Rule {
	rules := alerting.DefaultRules()
	return append(rules,
		alerting.Rule{Name: "key-errors", Type: alerting.ErrorSpike, Subject: alerting.SubjectKey, MinRequests: 50},
		alerting.Rule{Name: "route-errors", Type: alerting.ErrorSpike, Subject: alerting.SubjectRoute, MinRequests: 50},
		alerting.Rule{Name: "owner-rate-limit", Type: alerting.RateLimitExceeded, Subject: alerting.SubjectOwner},
		alerting.Rule{Name: "route-unusual", Type: alerting.UnusualActivity, Subject: alerting.SubjectRoute, MinRequests: 100},
		alerting.Rule{Name: "key-slow", Type: alerting.PerformanceDegradation, Subject: alerting.SubjectKey,
			Threshold: 1000, BaselineFactor: 4, MinRequests: 50},
	)
}

func newBenchEvaluator(b *testing.B, w *benchWorld) *alerting.Evaluator {
	ev, err := alerting.New(alerting.Options{
		Store: storetest.MustOpen(b), Rules: benchRules(),
		Traffic: w, History: w, Quotas: w,
		Calendar: saturdayBoost{},
		Notify:   alerting.StageFunc(func(_ context.Context, a ...alerting.Alert) ([]alerting.Alert, error) { return a, nil }),
	})
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkEvalPass measures one evaluation pass over 10,000 keys, 500
// owners and 50 routes under rules of every type, in the steady state:
// baselines built for the hour, 1% of keys with open alerts. Goal: < 50 ms.
func BenchmarkEvalPass(b *testing.B) {
	w := newBenchWorld(10000, 50)
	ev := newBenchEvaluator(b, w)
	ctx := context.Background()
	now := t0
	for range 70 { // past every For: the misbehaving subjects fire
		now = now.Add(10 * time.Second)
		if err := ev.EvalAt(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
	if s := ev.Stats(); s.Alerts[alerting.StateFiring] < 300 {
		b.Fatalf("only %d alerts firing; the benchmark should carry open alerts", s.Alerts[alerting.StateFiring])
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ev.EvalAt(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvalPassBaselineRebuild is the first pass of each hour, which
// also reads 28 hours of rollups per subject kind to rebuild baselines.
func BenchmarkEvalPassBaselineRebuild(b *testing.B) {
	w := newBenchWorld(10000, 50)
	ev := newBenchEvaluator(b, w)
	ctx := context.Background()
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Hour)
		if err := ev.EvalAt(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
}
