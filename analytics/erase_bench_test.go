package analytics_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// BenchmarkEraseKey erases keys of the 10M-record fixture, each once (run
// it with -benchtime=1x; it changes the fixture, so run it alone): the
// rare key (60 records, one in each of 60 blocks), a key of median use
// (records in nearly every block) and the busiest key. Goal: under a
// minute each. Meanwhile a Recorder on the same file records 2,000
// requests a second and flushes every 100 ms, as the request path would;
// flush-ms-max and flush-ms-p99 are how long those flushes took, so how
// long a flush waited for the erasure's write transactions. cpu-s/erase
// is the process's CPU time during the erasure.
func BenchmarkEraseKey(b *testing.B) {
	benchService(b)
	for _, key := range []string{benchRareKey, "key_000500", "key_000000"} {
		b.Run(key, func(b *testing.B) {
			rec, err := metrics.New(metrics.Options{Store: bench.st, Now: func() time.Time { return benchEnd }})
			if err != nil {
				b.Fatal(err)
			}
			defer rec.Stop()
			stop := servingMeanwhile(rec)
			eraser := metrics.NewEraser(bench.st, rec, nil)
			var res metrics.EraseResult
			cpu := processCPU()
			start := time.Now()
			for b.Loop() {
				if res, err = eraser.Erase(context.Background(), metrics.EraseRequest{KeyID: key}); err != nil {
					b.Fatal(err)
				}
			}
			took := time.Since(start)
			// Process CPU during the erase, the serving goroutine's
			// small share included: on a shared machine the steadier
			// figure, and about the wall time on a quiet one.
			cpuTook := processCPU() - cpu
			times := stop()
			b.ReportMetric(cpuTook.Seconds(), "cpu-s/erase")
			b.ReportMetric(took.Seconds(), "s/erase")
			b.ReportMetric(float64(res.RawRecords), "records-erased")
			b.ReportMetric(float64(res.BlocksRewritten+res.BlocksDeleted), "blocks-rewritten")
			b.ReportMetric(float64(res.ScrubbedPages), "pages-scrubbed")
			b.ReportMetric(float64(len(times)), "flushes-meanwhile")
			if len(times) > 0 {
				slices.Sort(times)
				b.ReportMetric(float64(times[len(times)-1])/float64(time.Millisecond), "flush-ms-max")
				b.ReportMetric(float64(times[len(times)*99/100])/float64(time.Millisecond), "flush-ms-p99")
			}
		})
	}
}

// servingMeanwhile records 200 requests and flushes every 100 ms until
// the returned stop is called, which returns each flush's duration.
func servingMeanwhile(rec *metrics.Recorder) func() []time.Duration {
	done := make(chan struct{})
	var times []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		at := benchEnd
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for i := range 200 {
				at = at.Add(time.Millisecond)
				rec.Record(&metrics.Record{Time: at, Method: "GET", Route: "/api/forms", Status: 200,
					KeyID: "key_000001", OwnerID: "org_serving", Latency: time.Duration(i) * time.Microsecond})
			}
			start := time.Now()
			if err := rec.Flush(); err == nil {
				times = append(times, time.Since(start))
			}
		}
	})
	return func() []time.Duration {
		close(done)
		wg.Wait()
		return times
	}
}
