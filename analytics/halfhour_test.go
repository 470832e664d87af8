package analytics_test

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
)

// In India (UTC+5:30) local midnight falls inside an hourly rollup cell.
// However the daily series and the billing report place that cell, they
// must place it alike, so that October's daily points add up to October's
// bill.
func TestHalfHourZoneDaysAddUpToTheMonth(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	var recs []metrics.Record
	add := func(at string, n int) {
		ts, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			recs = append(recs, metrics.Record{Time: ts.Add(time.Duration(i) * time.Second), Method: "GET", Status: 200,
				KeyID: "key_1", OwnerID: "org_1", Tier: "basic"})
		}
	}
	add("2026-09-30T18:10:00Z", 3) // 23:40 on 30 September in India: the cell of 18:00 UTC holds local midnight
	add("2026-09-30T18:40:00Z", 4) // 00:10 on 1 October
	add("2026-10-15T06:00:00Z", 5)
	add("2026-10-31T18:20:00Z", 6) // 23:50 on 31 October
	add("2026-10-31T18:50:00Z", 7) // 00:20 on 1 November
	svc := newTestService(t, recs, analytics.Options{Location: kolkata})

	bill, err := svc.Billing(context.Background(), analytics.BillingQuery{Month: "2026-10"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Series(context.Background(), analytics.SeriesQuery{Interval: analytics.IntervalDay, Location: kolkata,
		From: time.Date(2026, 10, 1, 0, 0, 0, 0, kolkata), To: time.Date(2026, 11, 1, 0, 0, 0, 0, kolkata)})
	if err != nil {
		t.Fatal(err)
	}
	var days uint64
	for _, pt := range res.Series[0].Points {
		days += pt.Stats.Requests
	}
	if days != bill.Totals.Requests {
		t.Fatalf("October's days add up to %d requests, its bill to %d", days, bill.Totals.Requests)
	}
	// Both count the cell holding a local midnight in the day and month
	// that begin there.
	if want := uint64(3 + 4 + 5); bill.Totals.Requests != want {
		t.Fatalf("October's bill %d requests, want %d", bill.Totals.Requests, want)
	}
}
