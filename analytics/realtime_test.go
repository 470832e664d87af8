package analytics_test

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/metrics"
)

// rtNow is the realtime tests' clock.
var rtNow = time.Unix(1_795_000_000, 500_000_000).UTC() // .5 s into a second

// rtRecord is a request at rtNow minus ago.
func rtRecord(ago time.Duration, key, owner, route string, status int, latency time.Duration) metrics.Record {
	d := decision.Valid
	if status == 429 {
		d = decision.RateLimited
	}
	return metrics.Record{Time: rtNow.Add(-ago), Method: "GET", Route: route, Status: status, Latency: latency,
		KeyID: key, OwnerID: owner, Tier: "basic", RequestBytes: 10, ResponseBytes: 100, Decision: d}
}

func TestRealtimeWindowsAndSnapshot(t *testing.T) {
	rt, err := analytics.NewRealtime(analytics.RealtimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var recs []metrics.Record
	// In the last minute: 40 requests on /a by key k1 (owner o1), 20 on
	// /b by k2 (owner o1), 5xx and 429s among them.
	for i := range 60 {
		route, key := "/a", "k1"
		if i%3 == 2 {
			route, key = "/b", "k2"
		}
		status := 200
		switch {
		case i%10 == 0:
			status = 500
		case i%10 == 5:
			status = 429
		}
		recs = append(recs, rtRecord(time.Duration(i)*time.Second+2*time.Second/3, key, "o1", route, status, time.Duration(i+1)*time.Millisecond))
	}
	// Two to four minutes ago: 30 requests by k3 (owner o2) on /c.
	for i := range 30 {
		recs = append(recs, rtRecord(2*time.Minute+time.Duration(i)*4*time.Second, "k3", "o2", "/c", 200, 100*time.Millisecond))
	}
	// The second in progress counts for Window but not for the snapshot.
	recs = append(recs, rtRecord(0, "k1", "o1", "/a", 200, time.Millisecond))
	for i := range recs {
		if !rt.Record(&recs[i]) {
			t.Fatalf("record %d refused", i)
		}
	}

	snap := rt.Snapshot(rtNow, true)
	lm, l5 := snap.LastMinute, snap.Last5Minutes
	if lm.Requests != 60 || lm.Errors5xx != 6 || lm.RateLimited != 6 || lm.RPS != 1 || lm.ActiveKeys != 2 {
		t.Errorf("last minute %+v", lm)
	}
	if l5.Requests != 90 || l5.ActiveKeys != 3 || math.Abs(l5.RPS-0.3) > 1e-9 {
		t.Errorf("last 5 minutes %+v", l5)
	}
	// Percentiles as a rollup cell of the same requests would give.
	var want metrics.Cell
	for i := range recs[:60] {
		want.Add(&recs[i])
	}
	if ws := analytics.StatsOf(&want); lm.P50MS != ws.P50MS || lm.P95MS != ws.P95MS || lm.P99MS != ws.P99MS || lm.MaxMS != 60 || lm.AvgMS != ws.AvgMS {
		t.Errorf("last minute latencies %+v, want %+v", lm.Stats, ws)
	}
	if len(lm.TopRoutes) != 2 || lm.TopRoutes[0].Route != "/a" || lm.TopRoutes[0].Requests != 40 || lm.TopRoutes[1].Requests != 20 {
		t.Errorf("top routes %+v", lm.TopRoutes)
	}
	if len(snap.Series) != 900 || snap.Point != nil {
		t.Fatalf("%d series points, point %v", len(snap.Series), snap.Point)
	}
	lastSec := rtNow.Truncate(time.Second).Add(-time.Second)
	if p := snap.Series[899]; !p.T.Equal(lastSec) || p.Requests != 1 || p.Errors5xx != 1 {
		t.Errorf("newest point %+v (want 1 request at %s, a 500)", p, lastSec)
	}
	var total uint64
	for _, p := range snap.Series {
		total += p.Requests
	}
	if total != 90 {
		t.Errorf("series sums to %d, want 90", total)
	}
	if s := rt.Snapshot(rtNow, false); s.Series != nil || s.Point == nil || s.Point.Requests != 1 {
		t.Errorf("stream snapshot: series %d, point %+v", len(s.Series), s.Point)
	}

	// Windows for the alert evaluator.
	var src alerting.TrafficSource = rt
	global, err := src.Window(alerting.SubjectGlobal, time.Minute, rtNow)
	if err != nil || len(global) != 1 || global[0].Requests != 61 || global[0].Errors5xx != 6 || global[0].RateLimited != 6 {
		t.Errorf("global window %+v, %v", global, err)
	}
	routes, _ := src.Window(alerting.SubjectRoute, time.Minute, rtNow)
	byName := map[string]alerting.Aggregate{}
	for _, a := range routes {
		byName[a.Subject.Value] = a
	}
	if byName["/a"].Requests != 41 || byName["/b"].Requests != 20 || len(byName) != 2 || byName["/b"].P95 == 0 {
		t.Errorf("route window %+v", routes)
	}
	keys, _ := src.Window(alerting.SubjectKey, 5*time.Minute, rtNow)
	byName = map[string]alerting.Aggregate{}
	for _, a := range keys {
		byName[a.Subject.Value] = a
	}
	if k := byName["k3"]; k.Requests != 30 || k.Owner != "o2" || k.Tier != "basic" || k.P95 < 81*time.Millisecond || k.P95 > 100*time.Millisecond {
		t.Errorf("key window k3 %+v", k)
	}
	owners, _ := src.Window(alerting.SubjectOwner, 5*time.Minute, rtNow)
	byName = map[string]alerting.Aggregate{}
	for _, a := range owners {
		byName[a.Subject.Value] = a
	}
	if byName["o1"].Requests != 61 || byName["o2"].Requests != 30 || byName["o1"].Owner != "o1" {
		t.Errorf("owner window %+v", owners)
	}
	// An owner's sums are its keys': the errors and 429s of k1 and k2,
	// a p95 no slower than their slowest request (60 ms).
	if o := byName["o1"]; o.Errors5xx != 6 || o.RateLimited != 6 || o.P95 < 50*time.Millisecond || o.P95 > 60*time.Millisecond {
		t.Errorf("owner window o1 %+v", o)
	}
	if _, err := src.Window(alerting.SubjectGlobal, time.Hour, rtNow); !errors.Is(err, analytics.ErrWindowTooLong) {
		t.Errorf("1h window: %v", err)
	}
}

func TestRealtimeForgetsWhatIsOlderThanItsSpan(t *testing.T) {
	clock := rtNow
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{Span: 5 * time.Minute, Now: func() time.Time { return clock }})
	old := rtRecord(0, "k", "o", "/a", 200, time.Millisecond)
	if !rt.Record(&old) {
		t.Fatal("refused")
	}
	// Ten minutes later the ring has moved on: the old second is gone and
	// a record from before it is refused.
	clock = rtNow.Add(10 * time.Minute)
	later := rtRecord(-10*time.Minute, "k", "o", "/a", 200, time.Millisecond)
	rt.Record(&later)
	if g, _ := rt.Window(alerting.SubjectGlobal, 5*time.Minute, rtNow.Add(10*time.Minute)); len(g) != 1 || g[0].Requests != 1 {
		t.Errorf("window after 10 minutes %+v", g)
	}
	again := rtRecord(0, "k", "o", "/a", 200, time.Millisecond)
	if rt.Record(&again) {
		t.Error("a record older than the ring was taken")
	}
	// Nor may a record from the future push the ring forward.
	future := rtRecord(-time.Hour, "k", "o", "/a", 200, time.Millisecond)
	if rt.Record(&future) {
		t.Error("a record an hour ahead of the clock was taken")
	}
	if st := rt.Stats(); st.Late != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestRealtimeCapsKeysPerSlot(t *testing.T) {
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{MaxKeys: 3, MaxRoutes: 2})
	for i, key := range []string{"k1", "k2", "k3", "k4", "k5", "k1"} {
		rec := rtRecord(time.Duration(i)*time.Millisecond, key, "o", []string{"/a", "/b", "/c"}[i%3], 200, time.Millisecond)
		rt.Record(&rec)
	}
	st := rt.Stats()
	if st.OverflowKeys != 2 || st.OverflowRoutes != 2 {
		t.Errorf("stats %+v, want 2 keys and 2 routes over the caps", st)
	}
	g, _ := rt.Window(alerting.SubjectGlobal, time.Minute, rtNow)
	keys, _ := rt.Window(alerting.SubjectKey, time.Minute, rtNow)
	if len(g) != 1 || g[0].Requests != 6 || len(keys) != 3 {
		t.Errorf("global %+v, keys %+v: the global count must stay exact", g, keys)
	}
}

func TestRealtimeIsSafeForConcurrentUse(t *testing.T) {
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{})
	var wg sync.WaitGroup
	const writers, each = 8, 2000
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec := rtRecord(time.Duration(i%50)*time.Second, []string{"k1", "k2", "k3"}[w%3], "o", "/a", 200, time.Millisecond)
				rt.Record(&rec)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			rt.Snapshot(rtNow, true)
			_, _ = rt.Window(alerting.SubjectKey, time.Minute, rtNow)
		}
	})
	wg.Wait()
	if g, _ := rt.Window(alerting.SubjectGlobal, time.Minute, rtNow); len(g) != 1 || g[0].Requests != writers*each {
		t.Errorf("global %+v, want %d", g, writers*each)
	}
}

func TestRealtimeRecordDoesNotAllocate(t *testing.T) {
	rt, _ := analytics.NewRealtime(analytics.RealtimeOptions{Span: 5 * time.Minute})
	recs := benchRecords(1024)
	at := rtNow
	step := func() {
		for i := range recs {
			recs[i].Time = at
			at = at.Add(5 * time.Millisecond) // 200 requests a second
			rt.Record(&recs[i])
		}
	}
	for range 70 { // warm up: more than the whole ring
		step()
	}
	if n := testing.AllocsPerRun(20, step); n != 0 {
		t.Errorf("%v allocations per %d records", n, len(recs))
	}
}

func TestNewRealtimeChecksOptions(t *testing.T) {
	for _, o := range []analytics.RealtimeOptions{{Span: time.Minute}, {Span: 2 * time.Hour}, {Span: 5*time.Minute + time.Millisecond}, {MaxKeys: -1}} {
		if _, err := analytics.NewRealtime(o); !errors.Is(err, analytics.ErrBadOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
