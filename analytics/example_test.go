package analytics_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// The gate hands every request to Realtime next to the metrics
// Recorder; the dashboard reads snapshots and the alert evaluator
// windows.
func ExampleRealtime() {
	now := time.Date(2026, 11, 27, 21, 0, 0, 0, time.UTC)
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{})
	for i := range 120 {
		status := 200
		if i%20 == 0 {
			status = 503
		}
		rec := metrics.Record{Time: now.Add(-time.Duration(i) * 500 * time.Millisecond), Method: "GET",
			Route: "/api/forms/*", Status: status, Latency: time.Duration(10+i%10) * time.Millisecond,
			KeyID: "key_1", OwnerID: "org_1", Tier: "basic"}
		rt.Record(&rec)
	}
	snap := rt.Snapshot(now, false)
	m := snap.LastMinute
	fmt.Printf("last minute: %d requests, %.1f rps, error rate %.3f, %d active key(s), busiest %s\n",
		m.Requests, m.RPS, m.ErrorRate, m.ActiveKeys, m.TopRoutes[0].Route)

	win, _ := rt.Window(alerting.SubjectRoute, 5*time.Minute, now)
	fmt.Printf("route window: %s %d requests, %d 5xx\n", win[0].Subject.Value, win[0].Requests, win[0].Errors5xx)
	// Output:
	// last minute: 119 requests, 2.0 rps, error rate 0.042, 1 active key(s), busiest /api/forms/*
	// route window: /api/forms/* 120 requests, 6 5xx
}

// A Service reads what a metrics Recorder wrote: here a day of hourly
// traffic, summarised and then split by day in New York.
func ExampleService() {
	dir, _ := os.MkdirTemp("", "analytics-example-")
	defer os.RemoveAll(dir)
	st, _ := store.Open(dir, store.Options{NoSync: true})
	defer st.Close()

	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rec, _ := metrics.New(metrics.Options{Store: st, Now: func() time.Time { return now }})
	for h := range 36 { // one request an hour since yesterday midnight
		rec.Record(&metrics.Record{Time: now.Add(-time.Duration(h)*time.Hour - time.Minute), Method: "GET",
			Route: "/api/forms", Status: 200, Latency: 20 * time.Millisecond, KeyID: "key_1", OwnerID: "org_1"})
	}
	rec.Stop() // flushes

	svc, _ := analytics.New(analytics.Options{Source: metrics.NewReader(st), Now: func() time.Time { return now }})
	ctx := context.Background()
	sum, _ := svc.Summary(ctx, analytics.SummaryQuery{Period: analytics.PeriodDay})
	fmt.Printf("today %d requests, yesterday by this hour %d, change %+.0f%%\n",
		sum.Current.Requests, sum.Previous.Requests, 100**sum.Change.Requests)

	ny, _ := time.LoadLocation("America/New_York")
	series, _ := svc.Series(ctx, analytics.SeriesQuery{From: now.Add(-36 * time.Hour), Interval: analytics.IntervalDay, Location: ny})
	for _, p := range series.Series[0].Points {
		fmt.Println(p.T.In(ny).Format("Mon 2 Jan"), p.Requests)
	}
	// Output:
	// today 12 requests, yesterday by this hour 12, change +0%
	// Wed 25 Nov 5
	// Thu 26 Nov 24
	// Fri 27 Nov 7
}
