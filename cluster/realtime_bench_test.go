//go:build unix

package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// BenchmarkRealtimeRound: what sharing the realtime view costs each
// instance every second against the local PostgreSQL. Two instances each
// take 10,000 requests a second from 1,000 keys over 50 routes, with their
// rings full (the span and 20 s more of traffic); an op is one second of
// the cluster: one round on each (publish the slot in progress, seconds
// and tables, and every tenth second the last state of a slot just over;
// read and merge the other's). Reports
// the bytes and rows each instance publishes a second, this process's CPU
// per round (PostgreSQL's own is not in it), and the table's size.
func BenchmarkRealtimeRound(b *testing.B) {
	url := pg.Database(b)
	rng := rand.New(rand.NewPCG(1, 2))
	var keys, owners, routes [1000]string
	for k := range keys {
		keys[k], owners[k], routes[k] = fmt.Sprintf("k%d", k), fmt.Sprintf("o%d", k%100), fmt.Sprintf("/r%d", k%50)
	}
	// record files a second of traffic ending at end into rt.
	record := func(rt *analytics.Realtime, end time.Time) {
		for i := range 10000 {
			k := rng.IntN(1000)
			rec := metrics.Record{Time: end.Add(-time.Duration(i) * 100 * time.Microsecond), Method: "GET",
				Route: routes[k], Status: 200 + 300*(rng.IntN(50)/49), KeyID: keys[k], OwnerID: owners[k], Tier: "basic",
				Latency: time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))}
			rt.Record(&rec)
		}
	}
	c, err := cluster.Open(ctxFor(b, 30*time.Second), cluster.Options{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	var rings []*analytics.Realtime
	var syncs []*cluster.RealtimeSync
	for i := range 2 {
		rt, err := analytics.NewRealtime(analytics.RealtimeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rings = append(rings, rt)
		syncs = append(syncs, cluster.NewRealtimeSync(c, rt, cluster.RealtimeSyncOptions{
			Instance: fmt.Sprintf("pod-%d", i), Leads: func() bool { return i == 0 }}))
	}
	ctx := context.Background()
	// Filling takes a while: the last minute again from the clock after.
	for _, ago := range []int{int(rings[0].Span()/time.Second) + 20, 60} {
		start := time.Now()
		for ; ago > 0; ago-- {
			for _, rt := range rings {
				record(rt, start.Add(-time.Duration(ago)*time.Second))
			}
		}
	}
	// The first rounds publish the whole ring; the steady state follows.
	for _, s := range syncs {
		if err := s.Round(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// Rounds a real second apart, as Run does: what a round reads again
	// depends on PostgreSQL's clock.
	var cpu time.Duration
	var ops int
	for b.Loop() {
		b.StopTimer()
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		for _, rt := range rings {
			record(rt, time.Now())
		}
		b.StartTimer()
		before := processCPU()
		for _, s := range syncs {
			if err := s.Round(ctx); err != nil {
				b.Fatal(err)
			}
		}
		cpu += processCPU() - before
		ops++
	}
	var bytes, rows, size int64
	if err := c.Pool().QueryRow(ctx, `SELECT coalesce(sum(length(payload)), 0), count(*), pg_total_relation_size('apiwarden_realtime')
		FROM apiwarden_realtime`).Scan(&bytes, &rows, &size); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpu)/float64(2*ops)/1e6, "cpu-ms/round")
	b.ReportMetric(float64(bytes)/2, "table-bytes/instance")
	b.ReportMetric(float64(rows)/2, "rows/instance")
	b.ReportMetric(float64(size), "relation-bytes")
	// One instance alone has at most 600,000 in a minute; the seconds
	// between filling and the first round have none.
	if got := rings[0].Snapshot(time.Now(), false).LastMinute.Requests; got < 2*40*10000 {
		b.Fatalf("pod-0's last minute: %d requests, want both instances' (up to %d)", got, 2*60*10000)
	}
}

// processCPU returns the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
