package analytics_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
)

// benchRecords are requests from 1,000 keys over 50 routes.
func benchRecords(n int) []metrics.Record {
	g := newSynth(7, time.Unix(1_790_000_000, 0), time.Unix(1_790_000_100, 0), n, 1000, 50)
	recs := make([]metrics.Record, n)
	for i := range recs {
		g.next(&recs[i])
	}
	return recs
}

// BenchmarkRealtimeRecord measures the gate's cost per request: 10,000
// requests a second of simulated time, so cells and slots turn over as in
// production and the steady state (tables grown) is what is measured.
func BenchmarkRealtimeRecord(b *testing.B) {
	recs := benchRecords(1 << 14)
	start := time.Unix(1_790_000_000, 0)
	// warm runs the ring through once, so every slot's tables have grown
	// to the traffic before the timer starts.
	warm := func(rt *analytics.Realtime) time.Time {
		t := start
		for i := range int(rt.Span()/time.Second+20) * 10000 {
			rec := &recs[i&(len(recs)-1)]
			rec.Time = t
			rt.Record(rec)
			t = t.Add(100 * time.Microsecond)
		}
		return t
	}
	b.Run("serial", func(b *testing.B) {
		rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{})
		start := warm(rt)
		b.ReportAllocs()
		var cpu time.Duration
		for i := 0; b.Loop(); i++ {
			if i == 0 {
				cpu = processCPU()
			}
			rec := &recs[i&(len(recs)-1)]
			rec.Time = start.Add(time.Duration(i) * 100 * time.Microsecond)
			rt.Record(rec)
		}
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	})
	b.Run("parallel", func(b *testing.B) {
		rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{})
		start := warm(rt)
		var n atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		cpu := processCPU()
		defer func() { b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op") }()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				rec := recs[i&int64(len(recs)-1)] // a copy: goroutines must not share one
				rec.Time = start.Add(time.Duration(i) * 100 * time.Microsecond)
				rt.Record(&rec)
			}
		})
	})
}
