package analytics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// historyHour is the hour whose baselines the history benchmarks read for.
var historyHour = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

// historyService is a real bbolt file with what one unusual-activity
// rebuild reads for 10,000 keys: a cell per key in each of the 24 hours
// before historyHour and in the same hour of the four weeks before. The
// hours in between are left empty to keep the fixture quick to build, so
// the B-tree is smaller than a month of production data.
func historyService(b *testing.B, keys int) *analytics.Service {
	b.Helper()
	st := storetest.MustOpen(b)
	var hours []time.Time
	for i := 1; i <= 24; i++ {
		hours = append(hours, historyHour.Add(-time.Duration(i)*time.Hour))
	}
	for w := 1; w <= 4; w++ {
		hours = append(hours, historyHour.AddDate(0, 0, -7*w))
	}
	recs := make([]metrics.Record, 0, keys)
	rec, err := metrics.New(metrics.Options{Store: st, BufferSize: keys + 1, Now: func() time.Time { return historyHour }})
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range hours {
		recs = recs[:0]
		for k := range keys {
			recs = append(recs, metrics.Record{
				Time: h.Add(time.Duration(k) * time.Millisecond), Method: "GET", Status: 200,
				Route: fmt.Sprintf("/api/r%02d/*", k%50), Latency: time.Duration(20+k%80) * time.Millisecond,
				KeyID: fmt.Sprintf("key_%05d", k), OwnerID: fmt.Sprintf("owner_%03d", k%500), Tier: "basic",
			})
		}
		if n := rec.RecordBatch(recs); n != len(recs) {
			b.Fatalf("recorder took %d of %d", n, len(recs))
		}
		if err := rec.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	rec.Stop()
	svc, err := analytics.New(analytics.Options{Source: metrics.NewReader(st), Now: func() time.Time { return historyHour }})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkHistoryRebuild reads what baseline rebuilds of the key kind
// read from the hourly rollups with 10,000 keys: "full" the 24 recent
// hours and the same hour of four weeks (the first rebuild after a
// start), "hourly" the two newest hours and the four weeks (every
// rebuild after that).
func BenchmarkHistoryRebuild(b *testing.B) {
	svc := historyService(b, 10000)
	for _, bc := range []struct {
		name   string
		recent int
	}{{"full", 24}, {"hourly", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				count := func(string, time.Time, alerting.HourStat) { n++ }
				var hours []time.Time
				for w := 4; w >= 1; w-- {
					hours = append(hours, historyHour.AddDate(0, 0, -7*w))
				}
				for h := bc.recent; h >= 1; h-- {
					hours = append(hours, historyHour.Add(-time.Duration(h)*time.Hour))
				}
				if err := svc.Hours(alerting.SubjectKey, hours, count); err != nil {
					b.Fatal(err)
				}
				if want := (bc.recent + 4) * 10000; n != want {
					b.Fatalf("read %d rows, want %d", n, want)
				}
			}
		})
	}
}
