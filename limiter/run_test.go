package limiter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// waitFor polls cond, bounded: Run works on a real ticker, and the Redis
// batcher's callers on goroutines, so these tests wait for them instead of
// stepping a clock.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunSnapshotsAndSweepsUntilStop(t *testing.T) {
	s := storetest.MustOpen(t)
	now := t0
	clock := make(chan time.Time, 1)
	clock <- now
	l := newTestLimiter(t, Options{Store: s, SnapshotInterval: time.Millisecond, Now: func() time.Time {
		n := <-clock
		clock <- n
		return n
	}})
	l.AllowAt(now, Request{Subject: "k", Tier: "free"})
	done := make(chan error, 1)
	go func() { done <- l.Run(context.Background()) }()
	waitFor(t, "a snapshot", func() bool { return recordCount(t, s) == 1 })

	<-clock
	clock <- now.Add(time.Hour) // k is full: the sweeper drops it
	waitFor(t, "the sweep", func() bool { return l.Stats().Subjects == 0 })
	waitFor(t, "the record's deletion", func() bool { return recordCount(t, s) == 0 })

	if err := l.Run(context.Background()); !errors.Is(err, lifecycle.ErrAlreadyRunning) {
		t.Errorf("second Run: %v", err)
	}
	l.Stop()
	l.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

func TestRunEndsWithContextAndSnapshots(t *testing.T) {
	s := storetest.MustOpen(t)
	l := newTestLimiter(t, Options{Store: s, SnapshotInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	l.AllowAt(t0, Request{Subject: "k", Tier: "free"})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if recordCount(t, s) != 1 {
		t.Fatal("no snapshot when the context ended")
	}
	l.Stop() // after Run has ended: still returns
}

func TestStopBeforeRun(t *testing.T) {
	s := storetest.MustOpen(t)
	l := newTestLimiter(t, Options{Store: s})
	l.AllowAt(t0, Request{Subject: "k", Tier: "free"})
	l.Stop()
	if recordCount(t, s) != 1 {
		t.Fatal("Stop without Run did not snapshot")
	}
	if err := l.Run(context.Background()); err != nil {
		t.Fatalf("Run after Stop: %v", err)
	}
}

func TestConcurrentStopsWait(t *testing.T) {
	s := storetest.MustOpen(t)
	l := newTestLimiter(t, Options{Store: s})
	for i := range 1000 {
		l.AllowAt(t0, Request{Subject: Subject(rune(0x4e00 + i)), Tier: "free"})
	}
	go func() { _ = l.Run(context.Background()) }()
	stopped := make(chan struct{}, 3)
	for range 3 {
		go func() { l.Stop(); stopped <- struct{}{} }()
	}
	for range 3 {
		<-stopped
		if n := recordCount(t, s); n != 1000 {
			t.Errorf("a Stop returned before the snapshot: %d records", n)
		}
	}
}
