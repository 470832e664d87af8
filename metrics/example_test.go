package metrics_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

func openStore() (*store.Store, func()) {
	dir, _ := os.MkdirTemp("", "apiwarden-metrics-example")
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		panic(err)
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }
}

// A server starts the Recorder's writer, records every request on the hot
// path and stops the Recorder at shutdown, which commits what is buffered.
func Example() {
	st, cleanup := openStore()
	defer cleanup()

	rec, err := metrics.New(metrics.Options{
		Store:               st,
		FlushInterval:       time.Second,
		RawRetentionDays:    metrics.DefaultRawRetentionDays,
		HourlyRetentionDays: metrics.DefaultHourlyRetentionDays,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error)
	go func() { done <- rec.Run(context.Background()) }()

	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range 10 {
		rec.Record(&metrics.Record{
			Time:      start.Add(time.Duration(i) * time.Minute),
			RequestID: fmt.Sprintf("aw1-%d", i),
			Method:    "GET",
			Route:     "/api/forms/*",
			Path:      fmt.Sprintf("/api/forms/%d", i),
			Status:    200,
			Latency:   time.Duration(10+i) * time.Millisecond,
			KeyID:     "key_1",
			Tier:      "premium",
			ClientIP:  netip.MustParseAddr("203.0.113.9"),
			Decision:  decision.Valid,
		})
	}
	rec.Stop() // drains and commits
	if err := <-done; err != nil {
		fmt.Println(err)
	}

	rd := metrics.NewReader(st)
	day, _ := rd.Sum(context.Background(), metrics.CellQuery{
		Interval: metrics.Daily, Dimension: metrics.DimRoute, Value: "/api/forms/*",
		From: start, To: start.Add(24 * time.Hour),
	})
	fmt.Println("requests:", day.Count, "2xx:", day.Status2xx, "max:", day.LatencyMax)
	fmt.Println("flushed:", rec.Stats().Flushed)
	// Output:
	// requests: 10 2xx: 10 max: 19ms
	// flushed: 10
}

// Totals answers "top routes by requests" for a period: the first n of the
// result are the top n.
func ExampleReader_Totals() {
	st, cleanup := openStore()
	defer cleanup()
	rec, _ := metrics.New(metrics.Options{Store: st})
	t := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i, route := range []string{"/a", "/b", "/b", "/c", "/b", "/c"} {
		rec.Record(&metrics.Record{Time: t.Add(time.Duration(i) * time.Second), Method: "GET", Route: route,
			Status: 200, Latency: time.Duration(i+1) * time.Millisecond})
	}
	rec.Stop()

	top, _ := metrics.NewReader(st).Totals(context.Background(), metrics.CellQuery{
		Interval: metrics.Hourly, Dimension: metrics.DimRoute, AllValues: true,
		From: t.Add(-24 * time.Hour), To: t.Add(time.Hour),
	})
	for _, vc := range top[:2] {
		fmt.Printf("%s %d requests, p95 ≈ %s\n", vc.Value, vc.Cell.Count, vc.Cell.LatencyQuantile(0.95).Round(100*time.Microsecond))
	}
	// Output:
	// /b 3 requests, p95 ≈ 5ms
	// /c 2 requests, p95 ≈ 5.9ms
}

// ScanCellsAt reads scattered hours in one walk: here the same hour a week
// apart, as the alert evaluator's baselines do, skipping the hours between.
func ExampleReader_ScanCellsAt() {
	st, cleanup := openStore()
	defer cleanup()
	monday := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	rec, _ := metrics.New(metrics.Options{Store: st, Now: func() time.Time { return monday.AddDate(0, 0, 8) }})
	for day := range 8 {
		for i := range day + 1 {
			rec.Record(&metrics.Record{Time: monday.AddDate(0, 0, day).Add(time.Duration(i) * time.Minute),
				Method: "GET", Status: 200, KeyID: "key_1"})
		}
	}
	rec.Stop()

	hours := []time.Time{monday, monday.AddDate(0, 0, 7)}
	_ = metrics.NewReader(st).ScanCellsAt(context.Background(), metrics.Hourly, metrics.DimKey, hours,
		func(key string, start time.Time, c *metrics.Cell) error {
			fmt.Printf("%s %s: %d requests\n", key, start.Format("Mon 02 15:04"), c.Count)
			return nil
		})
	// Output:
	// key_1 Mon 16 09:00: 1 requests
	// key_1 Mon 23 09:00: 8 requests
}

// Records pages through raw records newest first; the cursor of one page
// starts the next.
func ExampleReader_Records() {
	st, cleanup := openStore()
	defer cleanup()
	rec, _ := metrics.New(metrics.Options{Store: st})
	t := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		rec.Record(&metrics.Record{Time: t.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprint("aw1-", i),
			Method: "GET", Status: 200 + 200*(i%2), KeyID: "key_1"})
	}
	rec.Stop()

	rd := metrics.NewReader(st)
	q := metrics.RecordQuery{KeyID: "key_1", Limit: 2}
	for {
		page, err := rd.Records(context.Background(), q)
		if err != nil {
			fmt.Println(err)
			return
		}
		var line []string
		for _, r := range page.Records {
			line = append(line, fmt.Sprint(r.RequestID, " ", r.Status))
		}
		fmt.Println(strings.Join(line, "; "))
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	// Output:
	// aw1-4 200; aw1-3 400
	// aw1-2 200; aw1-1 400
	// aw1-0 200
}

// ParseEvents turns a POST /v1/events body into records; bad lines come
// back as errors and do not cost the good ones.
func ExampleParseEvents() {
	body := `{"time":"2026-11-27T09:30:00Z","method":"GET","route":"/api/forms/*","status":200,"latency_ms":12.5}
{"time":"2026-11-27T09:30:01Z","method":"GET","status":700}
{"time":"2026-11-27T09:30:02Z","method":"POST","status":201,"key_id":"key_1","decision":"VALID"}
`
	batch, err := metrics.ParseEvents(strings.NewReader(body), "application/x-ndjson", time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	if err != nil {
		fmt.Println(err) // ErrTooManyEvents → 413, ErrMalformedEvents → 400
		return
	}
	fmt.Println("accepted:", len(batch.Records), "first latency:", batch.Records[0].Latency)
	for _, e := range batch.Errors {
		fmt.Printf("line %d: %s\n", e.Line, e.Message)
	}
	// A Recorder then takes them: n := rec.RecordBatch(batch.Records).

	// Output:
	// accepted: 2 first latency: 12.5ms
	// line 2: status 700 is not in 100–599
}

// A Histogram merges exactly, so percentiles over many cells come from
// the merged histogram and stay within 4.4% of the exact value.
func ExampleHistogram() {
	var monday, tuesday metrics.Histogram
	for i := 1; i <= 100; i++ {
		monday.Add(float64(i)) // 1..100 ms
		tuesday.Add(float64(100 + i))
	}
	var week metrics.Histogram
	week.Merge(&monday)
	week.Merge(&tuesday)
	b, _ := week.MarshalBinary()
	fmt.Printf("count %d, p50 ≈ %.1f, p99 ≈ %.1f, %d bytes encoded\n",
		week.Count(), week.Quantile(0.5), week.Quantile(0.99), len(b))
	// Output:
	// count 200, p50 ≈ 103.1, p99 ≈ 206.1, 60 bytes encoded
}
