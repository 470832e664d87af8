package cluster_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// rawInFile counts the raw records left in n's data file.
func rawInFile(t testing.TB, n *shipNode) int {
	t.Helper()
	total := 0
	q := metrics.RecordQuery{Limit: metrics.MaxRecordLimit}
	for {
		page, err := n.rd.Records(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		total += len(page.Records)
		if page.Next == "" {
			return total
		}
		q.Cursor = page.Next
	}
}

// rollupTotal is the request count of n's hourly rollups: every record
// ever recorded, shipped or not.
func rollupTotal(t testing.TB, n *shipNode) uint64 {
	t.Helper()
	sum, err := n.rd.Sum(context.Background(), metrics.CellQuery{Interval: metrics.Hourly, Dimension: metrics.DimTotal})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Count
}

// withShipper replaces n's shipper by one with opts (the test's interval
// unless opts sets one).
func withShipper(t testing.TB, n *shipNode, opts cluster.ShipperOptions) {
	t.Helper()
	if opts.Interval == 0 {
		opts.Interval = 20 * time.Millisecond
	}
	sh, err := cluster.NewShipper(n.cluster, n.rd, opts)
	if err != nil {
		t.Fatal(err)
	}
	n.ship = sh
}

// Shipped blocks leave the data file once PostgreSQL holds them; a round
// that crashed after its commit, before its cursor moved, deletes nothing.
func TestShipTrimsWhatPostgresConfirmed(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		n.record(t, 2500, start.Add(time.Duration(i)*time.Minute), time.Millisecond)
	}
	n.ship.SetShipAfterCommit(func() error { return context.Canceled })
	if _, err := n.ship.ShipOnce(ctxFor(t, time.Minute)); err == nil {
		t.Fatal("the crashed round reported no error")
	}
	if got := rawInFile(t, n); got != 7500 {
		t.Fatalf("%d raw records in the data file after a round that crashed before its cursor moved, want all 7500", got)
	}
	n.ship.SetShipAfterCommit(nil)
	n.drain(t)
	wantShipped(t, n, 7500)
	if got := rawInFile(t, n); got != 0 {
		t.Fatalf("%d raw records still in the data file after shipping, want 0", got)
	}
	if got := rollupTotal(t, n); got != 7500 {
		t.Fatalf("rollups count %d after trimming, want 7500: rollups stay", got)
	}
}

// PostgreSQL stopped while an instance records past its spool bound: the
// oldest unshipped blocks are dropped, whole, and counted; once it is
// back exactly the records sent less those dropped arrive, each once, and
// the instance's row says how many were dropped.
func TestShipSpoolBoundWhilePostgresDown(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	withShipper(t, n, cluster.ShipperOptions{MaxRecords: 5000, SpoolMaxRecords: 5000})
	if err := n.cluster.Beat(ctxFor(t, 30*time.Second), "a", "v1", time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n.record(t, 2000, start, time.Millisecond)
	n.drain(t)

	startPostgres := pg.StopForTest(t)
	for i := range 6 { // one block of 1500 each; the bound holds three
		n.record(t, 1500, start.Add(time.Duration(i+1)*time.Minute), time.Millisecond)
		if _, err := n.ship.ShipOnce(ctxFor(t, time.Minute)); err == nil {
			t.Fatal("a round succeeded while PostgreSQL is down")
		}
	}
	if b, err := n.ship.Backlog(); err != nil || b.Records != 4500 || !b.Oldest.Equal(start.Add(4*time.Minute)) {
		t.Fatalf("waiting while PostgreSQL is down: %+v, %v; want the newest 4500 records, from minute 4", b, err)
	}
	if got := n.ship.DroppedRecords(); got != 4500 {
		t.Fatalf("%d records dropped, want 4500 (three blocks of 1500)", got)
	}
	startPostgres()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.ship.Run(ctx) }()
	defer func() { cancel(); n.ship.Stop(); <-done }()
	within(t, 30*time.Second, "the spool drained and the drop reported", func() bool {
		in, err := n.cluster.Instances(ctxFor(t, 30*time.Second))
		return err == nil && len(in) == 1 && in[0].ShipWaiting == 0 && in[0].ShipDropped == 4500
	})
	wantShipped(t, n, 2000+9000-4500)
	if got := rollupTotal(t, n); got != 11000 {
		t.Fatalf("rollups count %d, want all 11000 recorded: rollups are never dropped", got)
	}
	if total, err := n.rd.ShipDropped(); err != nil || total != 4500 {
		t.Fatalf("the data file's dropped total: %d, %v; want 4500", total, err)
	}
}

// A raw block garbled on disk is passed over, named and counted; the
// blocks around it ship and the cursor moves on.
func TestShipPassesACorruptBlock(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		n.record(t, 1000, start.Add(time.Duration(i)*time.Minute), time.Millisecond)
	}
	batches, err := n.rd.BatchesAfter(context.Background(), 0, 1<<20)
	if err != nil || len(batches) != 3 {
		t.Fatalf("%d blocks, %v; want 3", len(batches), err)
	}
	middle := batches[1].Seq
	err = n.st.Update(func(tx *store.Tx) error {
		day := tx.Bucket(store.BucketRaw, []byte("2026-03-01"))
		key := binary.BigEndian.AppendUint64(nil, middle)
		if day == nil || day.Get(key) == nil {
			return fmt.Errorf("block %d is not in day 2026-03-01", middle)
		}
		return day.Put(key, []byte("\x04\x00garbage"))
	})
	if err != nil {
		t.Fatal(err)
	}
	n.drain(t)
	wantShipped(t, n, 2000)
	if got := n.ship.CorruptBlocks(); got != 1 {
		t.Fatalf("%d corrupt blocks counted, want 1", got)
	}
	if cur, err := n.rd.ShipCursor(); err != nil || cur != batches[2].Seq {
		t.Fatalf("cursor %d, %v; want past every block (%d)", cur, err, batches[2].Seq)
	}
}

// A long drain reports its progress in the instance's row after every
// round, not only once the backlog is empty.
func TestShipReportsEveryRoundOfADrain(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	withShipper(t, n, cluster.ShipperOptions{MaxRecords: 1000})
	if err := n.cluster.Beat(ctxFor(t, 30*time.Second), "a", "v1", time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 10 { // ten blocks of 1000: a round each
		n.record(t, 1000, start.Add(time.Duration(i)*time.Minute), time.Millisecond)
	}
	rounds := 0
	paused, resume := make(chan struct{}), make(chan struct{})
	n.ship.SetShipAfterCommit(func() error {
		if rounds++; rounds == 4 {
			close(paused)
			<-resume
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.ship.Run(ctx) }()
	defer func() { cancel(); n.ship.Stop(); <-done }()
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatal("the fourth round did not come")
	}
	in, err := n.cluster.Instances(ctxFor(t, 30*time.Second))
	close(resume)
	if err != nil || len(in) != 1 || in[0].ShipWaiting != 7000 || in[0].ShipOldest == nil || !in[0].ShipOldest.Equal(start.Add(3*time.Minute)) {
		t.Fatalf("the row during the fourth round: %+v, %v; want 7000 waiting from minute 3", in, err)
	}
	within(t, 30*time.Second, "the drain's end reported", func() bool {
		in, err := n.cluster.Instances(ctxFor(t, 30*time.Second))
		return err == nil && len(in) == 1 && in[0].ShipWaiting == 0 && in[0].ShipOldest == nil
	})
	wantShipped(t, n, 10000)
}
