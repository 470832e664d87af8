package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
)

// Every instance that beats is listed with its version, its start and how
// far its mirror lags the cluster's key changes; a later beat replaces
// the row instead of adding one.
func TestHeartbeatsListInstances(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	within(t, 5*time.Second, "listeners connected", func() bool { return a.cluster.Healthy() && b.cluster.Healthy() })
	started := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	ctx := ctxFor(t, 10*time.Second)
	for _, id := range []string{"pod-b", "pod-a"} {
		if err := a.cluster.Beat(ctx, id, "v1.0.0", started, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, _, err := a.keys.Create(keys.CreateParams{Name: "k"}, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	// pod-a beats again, caught up and upgraded; pod-b's mirror is at 1.
	if err := b.cluster.Beat(ctx, "pod-a", "v1.1.0", started.Add(time.Hour), 3); err != nil {
		t.Fatal(err)
	}
	if err := b.cluster.Beat(ctx, "pod-b", "v1.0.0", started, 1); err != nil {
		t.Fatal(err)
	}
	got, err := b.cluster.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "pod-a" || got[1].ID != "pod-b" {
		t.Fatalf("instances %+v, want pod-a and pod-b once each", got)
	}
	if got[0].Version != "v1.1.0" || !got[0].StartedAt.Equal(started.Add(time.Hour)) || got[0].MirrorSeq != 3 || got[0].MirrorLag != 0 {
		t.Errorf("pod-a: %+v", got[0])
	}
	if got[1].MirrorSeq != 1 || got[1].MirrorLag != 2 {
		t.Errorf("pod-b: mirror at %d, lag %d; want 1 and 2", got[1].MirrorSeq, got[1].MirrorLag)
	}
	if age := time.Since(got[0].LastHeartbeat); age < -time.Minute || age > time.Minute {
		t.Errorf("pod-a's last beat is %v old", age)
	}
}

// A running Heartbeat beats at once, reporting its mirror's sequence, and
// stops when asked.
func TestHeartbeatRuns(t *testing.T) {
	url := pg.Database(t)
	a := newInstance(t, url)
	within(t, 5*time.Second, "listener connected", a.cluster.Healthy)
	if _, _, err := a.keys.Create(keys.CreateParams{Name: "k"}, "admin"); err != nil {
		t.Fatal(err)
	}
	hb := cluster.NewHeartbeat(a.cluster, a.keys, cluster.HeartbeatOptions{ID: "pod-a", Version: "dev",
		StartedAt: time.Now(), Interval: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- hb.Run(context.Background()) }()
	within(t, 5*time.Second, "pod-a listed, caught up", func() bool {
		got, err := a.cluster.Instances(context.Background())
		return err == nil && len(got) == 1 && got[0].ID == "pod-a" && got[0].MirrorSeq == 1 && got[0].MirrorLag == 0
	})
	hb.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
