package analytics_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// The benchmark fixture: 90 days of synthetic traffic, 10 million raw
// records from 1,000 keys over 50 routes, written through a
// metrics.Recorder in batches of half a million (RecordBatch, then Flush:
// one transaction each). It is built at most once per test binary run,
// into a temporary directory that TestMain removes, and only when a
// benchmark asks for it, so `go test ./...` never builds it. Building it
// takes about a minute; APIWARDEN_BENCH_RECORDS=1000000 makes a smaller
// one for a quick look.
var bench struct {
	once    sync.Once
	dir     string
	st      *store.Store
	svc     *analytics.Service
	records int
	took    time.Duration
	err     error
}

// benchRareKey is a key with only benchRareRecords records spread over the
// fixture's 90 days: one record in each of that many blocks. Even the least
// used of the 1,000 Zipf keys has a few records in nearly every 8,192-record
// block, so it is no test of skipping blocks.
const (
	benchRareKey     = "key_rare"
	benchRareRecords = 60
)

// benchEnd is the fixture's clock: mid-afternoon, late in a month, so a
// month-to-date summary has both daily cells and hourly edges.
var benchEnd = time.Date(2026, 11, 27, 15, 30, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.st != nil {
		bench.st.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchService(b *testing.B) *analytics.Service {
	b.Helper()
	bench.once.Do(func() {
		bench.records = 10_000_000
		if v := os.Getenv("APIWARDEN_BENCH_RECORDS"); v != "" {
			if bench.records, bench.err = strconv.Atoi(v); bench.err != nil {
				return
			}
		}
		if bench.dir, bench.err = os.MkdirTemp("", "apiwarden-analytics-bench-"); bench.err != nil {
			return
		}
		if bench.st, bench.err = store.Open(bench.dir, store.Options{NoSync: true}); bench.err != nil {
			return
		}
		start := time.Now()
		g := newSynth(1, benchEnd.AddDate(0, 0, -90), benchEnd, bench.records, 1000, 50)
		g.rare = synthKey{id: benchRareKey, owner: "org_rare", tier: "basic", ip: netip.AddrFrom4([4]byte{203, 0, 113, 9})}
		g.rareEvery = uint64(max(bench.records/benchRareRecords, 1))
		if bench.err = fillStore(bench.st, g, bench.records, benchEnd); bench.err != nil {
			return
		}
		bench.took = time.Since(start)
		fmt.Fprintf(os.Stderr, "analytics bench fixture: %d records in %s, %d MB on disk\n", bench.records, bench.took.Round(time.Second), dirBytes(bench.dir)>>20)
		bench.svc, bench.err = analytics.New(analytics.Options{
			Source:    metrics.NewReader(bench.st),
			Retention: analytics.Retention{RawDays: 90, HourlyDays: 400},
			Now:       func() time.Time { return benchEnd },
		})
	})
	if bench.err != nil {
		b.Fatalf("bench fixture: %v", bench.err)
	}
	return bench.svc
}

// BenchmarkQueries runs the dashboard's heaviest questions against the
// 90-day fixture. Goals: each under 20 ms, the 30-day top-20 under 10 ms.
func BenchmarkQueries(b *testing.B) {
	svc := benchService(b)
	ctx := context.Background()
	run := func(name string, fn func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time per query, all goroutines (and GC) included: on a
			// shared machine the least noisy figure.
			b.ReportMetric(float64(processCPU()-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
	run("summary_month", func() error {
		s, err := svc.Summary(ctx, analytics.SummaryQuery{Period: analytics.PeriodMonth})
		if err == nil && s.Current.Requests == 0 {
			err = fmt.Errorf("empty summary")
		}
		return err
	})
	run("series_daily_90d", func() error {
		s, err := svc.Series(ctx, analytics.SeriesQuery{From: benchEnd.AddDate(0, 0, -90), Interval: analytics.IntervalDay})
		if err == nil && len(s.Series[0].Points) != 91 {
			err = fmt.Errorf("%d points", len(s.Series[0].Points))
		}
		return err
	})
	run("series_daily_90d_new_york", func() error {
		ny, _ := time.LoadLocation("America/New_York")
		_, err := svc.Series(ctx, analytics.SeriesQuery{From: benchEnd.AddDate(0, 0, -90), Interval: analytics.IntervalDay, Location: ny})
		return err
	})
	run("top20_routes_30d", func() error {
		t, err := svc.Top(ctx, analytics.TopQuery{By: analytics.GroupRoute, From: benchEnd.AddDate(0, 0, -30), To: benchEnd, Limit: 20})
		if err == nil && len(t.Items) != 20 {
			err = fmt.Errorf("%d items", len(t.Items))
		}
		return err
	})
	run("series_hourly_7d_by_tier", func() error {
		s, err := svc.Series(ctx, analytics.SeriesQuery{From: benchEnd.AddDate(0, 0, -7), Interval: analytics.IntervalHour, GroupBy: analytics.GroupTier})
		if err == nil && len(s.Series) != 4 {
			err = fmt.Errorf("%d series", len(s.Series))
		}
		return err
	})
	run("records_page_100", func() error {
		p, err := svc.Records(ctx, analytics.RecordQuery{Limit: 100})
		if err == nil && len(p.Records) != 100 {
			err = fmt.Errorf("%d records", len(p.Records))
		}
		return err
	})
	run("records_page_100_one_key", func() error {
		_, err := svc.Records(ctx, analytics.RecordQuery{Limit: 100, KeyID: "key_000500"})
		return err
	})
	// All of the rare key's records fit one page, so the page reads every
	// block of the 90 days.
	run("records_page_100_rare_key", func() error {
		p, err := svc.Records(ctx, analytics.RecordQuery{Limit: 100, KeyID: benchRareKey})
		if err == nil && bench.records >= benchRareRecords && len(p.Records) != benchRareRecords {
			err = fmt.Errorf("%d records of %s", len(p.Records), benchRareKey)
		}
		return err
	})
	run("billing_month_by_owner", func() error {
		_, err := svc.Billing(ctx, analytics.BillingQuery{Month: "2026-10", GroupBy: analytics.GroupOwner})
		return err
	})
}

// dirBytes is the size of the files in dir: the fixture's data file, so
// that a change of the block format shows in the fixture's size.
func dirBytes(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}
