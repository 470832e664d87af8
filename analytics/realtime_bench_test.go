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
// warmRing records recs (a power of two of them, over and over) into rt
// at 10,000 a second from start until the ring has been run through once,
// so every slot's tables have grown to the traffic, and returns the time
// after the last.
func warmRing(rt *analytics.Realtime, recs []metrics.Record, start time.Time) time.Time {
	t := start
	for i := range int(rt.Span()/time.Second+20) * 10000 {
		rec := &recs[i&(len(recs)-1)]
		rec.Time = t
		rt.Record(rec)
		t = t.Add(100 * time.Microsecond)
	}
	return t
}

func BenchmarkRealtimeRecord(b *testing.B) {
	recs := benchRecords(1 << 14)
	warm := func(rt *analytics.Realtime) time.Time { return warmRing(rt, recs, time.Unix(1_790_000_000, 0)) }
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

// BenchmarkRealtimeParts measures what one instance publishes for its
// peers each second (an op is one second's Parts, as the publisher calls
// it) and what applying it costs a peer, with the ring full of 10,000
// requests a second from 1,000 keys over 50 routes: the seconds of the
// slot in progress every second, a slot's tables every tenth.
func BenchmarkRealtimeParts(b *testing.B) {
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{})
	t := warmRing(rt, benchRecords(1<<14), time.Unix(1_790_000_000, 0))
	// Seconds to publish at: the last ten minutes of the ring, a second
	// apart and half a second into each.
	base := t.Add(-10 * time.Minute).Truncate(time.Second).Add(500 * time.Millisecond)
	peer, _ := analytics.NewRealtime(analytics.RealtimeOptions{})
	b.ReportAllocs()
	var bytes, rows int
	var from time.Time
	for i := 0; b.Loop(); i++ {
		sec := i % 600
		if sec == 0 {
			from = base.Truncate(analytics.SlotWidth)
		}
		parts, next := rt.Parts(base.Add(time.Duration(sec)*time.Second), from)
		from = next
		for _, p := range parts {
			bytes += len(p.Payload)
			rows++
			if err := peer.Peers().Apply("peer", p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/s")
	b.ReportMetric(float64(rows)/float64(b.N), "rows/s")
}
