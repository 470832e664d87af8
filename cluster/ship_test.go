package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// shipNode is one instance's recording side: a real data file, its
// Recorder and a Shipper into the test's database.
type shipNode struct {
	id      string
	st      *store.Store
	rec     *metrics.Recorder
	rd      *metrics.Reader
	ship    *cluster.Shipper
	cluster *cluster.Cluster
	next    int // request ids handed out so far
}

func newShipNode(t testing.TB, url, id string, st *store.Store) *shipNode {
	t.Helper()
	return newShipNodeWith(t, url, id, metrics.Options{Store: st, MarkChangedCells: true})
}

// newShipNodeWith is newShipNode with the Recorder's options; set
// MarkChangedCells, as cluster mode does, to ship cells.
func newShipNodeWith(t testing.TB, url, id string, opts metrics.Options) *shipNode {
	t.Helper()
	c, err := cluster.Open(ctxFor(t, 30*time.Second), cluster.Options{URL: url, InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if opts.Store == nil {
		opts.Store = storetest.MustOpen(t)
	}
	st := opts.Store
	rec, err := metrics.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rd := metrics.NewReader(st)
	sh, err := cluster.NewShipper(c, rd, cluster.ShipperOptions{Interval: 20 * time.Millisecond, MaxRecords: 5000})
	if err != nil {
		t.Fatal(err)
	}
	return &shipNode{id: id, st: st, rec: rec, rd: rd, ship: sh, cluster: c}
}

// record records n requests, spread from start on, one every step, and
// flushes them into the data file.
func (n *shipNode) record(t testing.TB, count int, start time.Time, step time.Duration) {
	t.Helper()
	for i := range count {
		n.next++
		rec := metrics.Record{
			Time: start.Add(time.Duration(i) * step), RequestID: fmt.Sprintf("%s-%d", n.id, n.next),
			Method: "GET", Route: "/api/forms/*", Path: fmt.Sprintf("/api/forms/%d", n.next), Status: 200 + (i%3)*100,
			Latency: time.Duration(i%977) * time.Microsecond, RequestBytes: int64(i % 100), ResponseBytes: 512,
			KeyID: fmt.Sprintf("key_%d", i%7), OwnerID: "org_1", Tier: "free",
			ClientIP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Country: "DE", UserAgent: "test/1",
			Decision: decision.Valid,
		}
		if i%50 == 0 {
			rec.ClientIP = netip.Addr{}
		}
		if !n.rec.Record(&rec) {
			if err := n.rec.Flush(); err != nil {
				t.Fatal(err)
			}
			if !n.rec.Record(&rec) {
				t.Fatal("record dropped after a flush")
			}
		}
	}
	if err := n.rec.Flush(); err != nil {
		t.Fatal(err)
	}
}

// drain ships until nothing is waiting.
func (n *shipNode) drain(t testing.TB) {
	t.Helper()
	for {
		got, err := n.ship.ShipOnce(ctxFor(t, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			return
		}
	}
}

// shippedCounts returns the rows of instance id in apiwarden_records and
// how many distinct request ids they hold.
func shippedCounts(t testing.TB, n *shipNode) (rows, distinct int) {
	t.Helper()
	err := n.cluster.Pool().QueryRow(ctxFor(t, 30*time.Second),
		`SELECT count(*), count(DISTINCT request_id) FROM apiwarden_records WHERE instance_id = $1`, n.id).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

func wantShipped(t testing.TB, n *shipNode, want int) {
	t.Helper()
	rows, distinct := shippedCounts(t, n)
	if rows != want || distinct != want {
		t.Fatalf("%s: %d rows with %d distinct request ids in PostgreSQL, want %d", n.id, rows, distinct, want)
	}
	b, err := n.ship.Backlog()
	if err != nil || b.Records != 0 {
		t.Fatalf("%s: backlog after draining: %+v, %v", n.id, b, err)
	}
}

// Records over three UTC days and several flushes arrive once each, in
// their days' partitions, with their fields as recorded.
func TestShipEveryRecordOnce(t *testing.T) {
	url := pg.Database(t)
	n := newShipNode(t, url, "a", nil)
	start := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	n.record(t, 9000, start, 20*time.Second) // 50 hours: 3 days
	n.record(t, 3000, start.Add(time.Hour), time.Millisecond)
	b, err := n.ship.Backlog()
	if err != nil || b.Records != 12000 || !b.Oldest.Equal(start) {
		t.Fatalf("backlog before shipping: %+v, %v", b, err)
	}
	n.drain(t)
	wantShipped(t, n, 12000)
	n.drain(t) // nothing left: no second copy
	wantShipped(t, n, 12000)

	var parts int
	if err := n.cluster.Pool().QueryRow(ctxFor(t, 30*time.Second),
		`SELECT count(*) FROM pg_inherits WHERE inhparent = 'apiwarden_records'::regclass`).Scan(&parts); err != nil || parts < 3 {
		t.Fatalf("%d partitions, %v; want at least 3", parts, err)
	}
	var at time.Time
	var status int
	var ip *netip.Addr
	var key, dec, cache string
	if err := n.cluster.Pool().QueryRow(ctxFor(t, 30*time.Second), `SELECT at, status, client_ip, key_id, decision, cache_status
		FROM apiwarden_records WHERE request_id = 'a-2'`).Scan(&at, &status, &ip, &key, &dec, &cache); err != nil {
		t.Fatal(err)
	}
	want := netip.AddrFrom4([4]byte{10, 0, 0, 1})
	if !at.Equal(start.Add(20*time.Second)) || status != 300 || ip == nil || *ip != want || key != "key_1" || dec != decision.Valid.String() {
		t.Fatalf("row a-2: at %s status %d ip %v key %q decision %q cache %q", at, status, ip, key, dec, cache)
	}
}

// A shipper that dies between PostgreSQL's commit and the cursor update
// leaves the cursor behind; the next round (here in a new process's
// Shipper over the same data file) finds the batches shipped and inserts
// nothing twice.
func TestShipCrashAfterCommit(t *testing.T) {
	url := pg.Database(t)
	n := newShipNode(t, url, "a", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 { // three blocks of 2500; a round takes two
		n.record(t, 2500, start.Add(time.Duration(i)*time.Minute), time.Millisecond)
	}
	crash := errors.New("crashed after commit")
	n.ship.SetShipAfterCommit(func() error { return crash })
	if _, err := n.ship.ShipOnce(ctxFor(t, time.Minute)); !errors.Is(err, crash) {
		t.Fatalf("first round: %v, want the injected crash", err)
	}
	if rows, _ := shippedCounts(t, n); rows != 5000 {
		t.Fatalf("after the crashed round: %d rows, want the first 5000 committed", rows)
	}
	if b, _ := n.ship.Backlog(); b.Records != 7500 {
		t.Fatalf("backlog %d after the crashed round, want all 7500 (cursor not moved)", b.Records)
	}

	restarted := newShipNode(t, url, "a", n.st)
	restarted.drain(t)
	wantShipped(t, restarted, 7500)
	var batches, records int
	if err := n.cluster.Pool().QueryRow(ctxFor(t, 30*time.Second),
		`SELECT count(*), sum(records) FROM apiwarden_shipped_batches WHERE instance_id = 'a'`).Scan(&batches, &records); err != nil || batches != 3 || records != 7500 {
		t.Fatalf("batch rows: %d batches, %d records, %v", batches, records, err)
	}
}

// While PostgreSQL is down records wait in the data file and rounds fail;
// once it is back they drain, each once. Two instances ship meanwhile.
func TestShipPostgresOutage(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range []*shipNode{a, b} {
		wg.Go(func() {
			if err := n.ship.Run(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() { cancel(); a.ship.Stop(); b.ship.Stop(); wg.Wait() }()

	now := time.Now().UTC()
	a.record(t, 2000, now, time.Millisecond)
	b.record(t, 1000, now, time.Millisecond)
	within(t, 20*time.Second, "first records shipped", func() bool {
		ra, _ := shippedCounts(t, a)
		rb, _ := shippedCounts(t, b)
		return ra == 2000 && rb == 1000
	})

	startPostgres := pg.StopForTest(t)
	failedA, failedB := a.ship.ShipFailures(), b.ship.ShipFailures()
	for range 5 {
		a.record(t, 3000, now.Add(time.Second), time.Microsecond)
		b.record(t, 1000, now.Add(time.Second), time.Microsecond)
	}
	within(t, 20*time.Second, "rounds failing while PostgreSQL is down", func() bool {
		return a.ship.ShipFailures() > failedA && b.ship.ShipFailures() > failedB
	})
	if w, err := a.ship.Backlog(); err != nil || w.Records != 15000 {
		t.Fatalf("a's backlog while PostgreSQL is down: %+v, %v; want 15000", w, err)
	}
	startPostgres()
	within(t, 60*time.Second, "backlog drained", func() bool {
		wa, _ := a.ship.Backlog()
		wb, _ := b.ship.Backlog()
		return wa.Records == 0 && wb.Records == 0
	})
	wantShipped(t, a, 17000)
	wantShipped(t, b, 6000)
}

// Stop ships what the last flush left before it returns, so an instance
// that goes away for good loses nothing it had recorded.
func TestShipStopShipsTheLastFlush(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	sh, err := cluster.NewShipper(n.cluster, n.rd, cluster.ShipperOptions{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n.ship = sh
	start := time.Now().UTC()
	n.record(t, 1000, start, time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- sh.Run(context.Background()) }()
	within(t, 20*time.Second, "first round shipped", func() bool { rows, _ := shippedCounts(t, n); return rows == 1000 })
	n.record(t, 500, start.Add(time.Second), time.Millisecond) // the next round is an hour away
	sh.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantShipped(t, n, 1500)
}

// Each round reports the records and cells still waiting in the
// instance's row, for GET /admin/v1/cluster: here rounds fail after their
// commit, so all wait.
func TestShipBacklogReported(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	if err := n.cluster.Beat(ctxFor(t, 30*time.Second), "a", "v1", time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n.record(t, 300, start, time.Millisecond)
	n.ship.SetShipAfterCommit(func() error { return errors.New("crashed after commit") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.ship.Run(ctx) }()
	defer func() { cancel(); n.ship.Stop(); <-done }()
	within(t, 20*time.Second, "backlog in the instance's row", func() bool {
		got, err := n.cluster.Instances(ctxFor(t, 30*time.Second))
		b, berr := n.ship.Backlog()
		return err == nil && berr == nil && len(got) == 1 && got[0].ShipWaiting == 300 &&
			got[0].ShipOldest != nil && got[0].ShipOldest.Equal(start) &&
			b.Cells > 0 && got[0].ShipWaitingCells == int64(b.Cells)
	})
}
