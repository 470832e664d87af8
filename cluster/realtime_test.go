package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// partsOf lists parts as "instance kind@start payload", in the order read.
func partsOf(parts []cluster.PeerPart, t0 time.Time) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("%s %d@%s %s", p.Instance, p.Kind, p.Start.Sub(t0), p.Payload)
	}
	return out
}

// Each instance's parts are read by the others, not by itself; writing a
// part again replaces it; a read from a clock reading returns only what
// was written since; an instance deletes its own expired rows as it
// publishes, and ExpireRealtime everyone's.
func TestRealtimePublishReadExpire(t *testing.T) {
	url := pg.Database(t)
	a, b := openClusterFor(t, url, testSecret), openClusterFor(t, url, testSecret)
	ctx := ctxFor(t, 30*time.Second)
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	part := func(kind analytics.RealtimePartKind, after time.Duration, payload string) analytics.RealtimePart {
		return analytics.RealtimePart{Kind: kind, Start: t0.Add(after), Payload: []byte(payload)}
	}
	publish := func(c *cluster.Cluster, instance string, keepFrom time.Time, parts ...analytics.RealtimePart) {
		t.Helper()
		if err := c.PublishRealtime(ctx, instance, parts, keepFrom); err != nil {
			t.Fatal(err)
		}
	}
	read := func(c *cluster.Cluster, except string, since time.Time) ([]string, time.Time) {
		t.Helper()
		parts, readAt, err := c.ReadRealtime(ctx, except, since)
		if err != nil {
			t.Fatal(err)
		}
		return partsOf(parts, t0), readAt
	}
	expect := func(got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("read %q\nwant %q", got, want)
		}
	}

	publish(a, "pod-a", t0, part(analytics.PartSeconds, 10*time.Second, "a-s10"), part(analytics.PartSeconds, 0, "a-s0"),
		part(analytics.PartTables, 0, "a-t0"))
	publish(b, "pod-b", t0, part(analytics.PartSeconds, 0, "b-s0"))
	got, _ := read(b, "pod-b", time.Time{})
	expect(got, []string{"pod-a 1@0s a-s0", "pod-a 2@0s a-t0", "pod-a 1@10s a-s10"})
	got, readAt := read(a, "pod-a", time.Time{})
	expect(got, []string{"pod-b 1@0s b-s0"})

	// pod-a rewrites its slot in progress: one row, the new payload, and
	// it is all a read since the last one returns.
	publish(a, "pod-a", t0, part(analytics.PartSeconds, 10*time.Second, "a-s10 again"))
	got, _ = read(b, "pod-b", readAt)
	expect(got, []string{"pod-a 1@10s a-s10 again"})

	// pod-a moves on: its rows of the slot at t0 go, pod-b's stay, and a
	// part older than keepFrom is not stored.
	publish(a, "pod-a", t0.Add(10*time.Second), part(analytics.PartSeconds, 20*time.Second, "a-s20"),
		part(analytics.PartSeconds, 0, "a-s0 late"))
	got, _ = read(b, "pod-b", time.Time{})
	expect(got, []string{"pod-a 1@10s a-s10 again", "pod-a 1@20s a-s20"})
	got, _ = read(a, "pod-a", time.Time{})
	expect(got, []string{"pod-b 1@0s b-s0"})

	// The leader's sweep takes pod-b's too.
	n, err := a.ExpireRealtime(ctx, t0.Add(20*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("ExpireRealtime deleted %d rows (%v); want pod-a's and pod-b's older slots, 2", n, err)
	}
	got, _ = read(a, "nobody", time.Time{})
	expect(got, []string{"pod-a 1@20s a-s20"})
}

// Two running RealtimeSyncs: requests recorded on one instance show in
// the other's realtime snapshot and alert window within the deadline
// (the goal is about two intervals), and each instance's view counts
// every request once, however often it reads a part again.
func TestRealtimeSyncMergesInstances(t *testing.T) {
	const interval = 100 * time.Millisecond
	rings := runRealtimeSyncs(t, pg.Database(t), interval, "pod-a", "pod-b")
	record := func(id string, n int, status int) {
		for range n {
			rec := metrics.Record{Time: time.Now(), Method: "GET", Route: "/r", Status: status, Latency: time.Millisecond, KeyID: "k1", OwnerID: "o1"}
			rings[id].Record(&rec)
		}
	}
	record("pod-a", 3, 200)
	sent := time.Now()
	record("pod-b", 5, 500)
	lastMinute := func(id string) uint64 { return rings[id].Snapshot(time.Now(), false).LastMinute.Requests }
	within(t, 10*time.Second, "both instances' requests on both", func() bool {
		return lastMinute("pod-a") == 8 && lastMinute("pod-b") == 8
	})
	t.Logf("merge delay: %s with a %s interval (the snapshot counts whole seconds, so up to 1 s of it is the second ending)",
		time.Since(sent).Round(time.Millisecond), interval)
	got, err := rings["pod-a"].Window("global", time.Minute, time.Now())
	if err != nil || len(got) != 1 || got[0].Requests != 8 || got[0].Errors5xx != 5 {
		t.Fatalf("pod-a's alert window: %+v (%v); want 8 requests, 5 of them 5xx", got, err)
	}
	// One more request on pod-b: pod-a counts 9, not 8 plus every part
	// it read again in the rounds since (a part replaces, never adds).
	record("pod-b", 1, 200)
	within(t, 10*time.Second, "the ninth request on pod-a", func() bool { return lastMinute("pod-a") >= 9 })
	if n := lastMinute("pod-a"); n != 9 {
		t.Errorf("pod-a counts %d requests; want 9", n)
	}
}

// runRealtimeSyncs runs a ring and its RealtimeSync on url for each of
// ids, every interval, until t ends; the first id leads.
func runRealtimeSyncs(t *testing.T, url string, interval time.Duration, ids ...string) map[string]*analytics.Realtime {
	t.Helper()
	rings := map[string]*analytics.Realtime{}
	for _, id := range ids {
		rt, err := analytics.NewRealtime(analytics.RealtimeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rings[id] = rt
		sync := cluster.NewRealtimeSync(openClusterFor(t, url, testSecret), rt, cluster.RealtimeSyncOptions{
			Instance: id, Interval: interval, Leads: func() bool { return id == ids[0] }})
		done := make(chan error, 1)
		go func() { done <- sync.Run(context.Background()) }()
		t.Cleanup(func() {
			sync.Stop()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	return rings
}

// Another instance's top list is as fresh as its counts: from the first
// snapshot on pod-b that counts all of pod-a's requests, its top routes
// and active keys count them too. They used to follow only once pod-a's
// 10-second slot was over, up to 11 s after the counts.
func TestRealtimeSyncTopListsWithCounts(t *testing.T) {
	rings := runRealtimeSyncs(t, pg.Database(t), time.Second, "pod-a", "pod-b")
	const sent = 7
	for i := range sent {
		rec := metrics.Record{Time: time.Now(), Method: "GET", Route: "/top", Status: 200, Latency: time.Millisecond,
			KeyID: fmt.Sprintf("k%d", i%2), OwnerID: "o1"}
		rings["pod-a"].Record(&rec)
	}
	var snap analytics.Snapshot
	within(t, 30*time.Second, "pod-a's requests counted on pod-b", func() bool {
		snap = rings["pod-b"].Snapshot(time.Now(), false)
		return snap.LastMinute.Requests == sent
	})
	top := snap.LastMinute.TopRoutes
	if len(top) != 1 || top[0].Route != "/top" || top[0].Requests != sent || snap.LastMinute.ActiveKeys != 2 {
		t.Fatalf("pod-b counts %d requests, but its top routes are %+v and active keys %d; want /top with %d, and 2 keys",
			snap.LastMinute.Requests, top, snap.LastMinute.ActiveKeys, sent)
	}
}
