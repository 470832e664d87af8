package cluster_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// countingEraser is a data file's real Eraser that remembers what it was
// asked to erase and can hold its erasures until released.
type countingEraser struct {
	*metrics.Eraser
	mu    sync.Mutex
	asked []string // the key or owner of each Erase call, in order
	gate  chan struct{}
}

func (e *countingEraser) Erase(ctx context.Context, req metrics.EraseRequest) (metrics.EraseResult, error) {
	e.mu.Lock()
	e.asked = append(e.asked, req.KeyID+req.OwnerID)
	gate := e.gate
	e.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return metrics.EraseResult{}, ctx.Err()
		}
	}
	return e.Eraser.Erase(ctx, req)
}

func (e *countingEraser) calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.asked)
}

// follow runs an ErasureFollower and its Listener for node n until the
// test ends (or the returned stop is called), erasing through eraser;
// extra adds the listener's handlers of other channels (a nil handler
// removes the channel).
func follow(t *testing.T, n *shipNode, eraser cluster.LocalEraser, extra map[string]func(string)) (stop func()) {
	t.Helper()
	f := cluster.NewErasureFollower(n.cluster, eraser)
	handlers := map[string]func(string){cluster.ErasuresChannel: f.Notify}
	for ch, h := range extra {
		if h == nil {
			delete(handlers, ch) // not listening on ch
			continue
		}
		handlers[ch] = h
	}
	// No quiet resync within a test: what the follower applies, it
	// applies on its start, a connect or a notification.
	lis := cluster.NewListener(n.cluster, idleMirror{}, cluster.ListenerOptions{MaxBackoff: 200 * time.Millisecond,
		ResyncInterval: time.Hour, Handlers: handlers, CatchUp: f.Wake})
	runDone, listenDone := make(chan error, 1), make(chan error, 1)
	go func() { runDone <- f.Run(context.Background()) }()
	go func() { listenDone <- lis.Run(context.Background()) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			lis.Stop()
			<-listenDone
			f.Stop()
			<-runDone
		})
	}
	t.Cleanup(stop)
	within(t, 10*time.Second, n.id+"'s listener connected", n.cluster.Healthy)
	return stop
}

// waitingRecords counts the raw records in n's data file not yet shipped.
func waitingRecords(t *testing.T, n *shipNode) int {
	t.Helper()
	bl, err := n.rd.ShipBacklog()
	if err != nil {
		t.Fatal(err)
	}
	return bl.Records
}

// keyCells lists the keys n's daily rollup cells hold.
func keyCells(t *testing.T, n *shipNode) []string {
	t.Helper()
	keys, err := n.rd.Values(ctxFor(t, 30*time.Second), metrics.DimKey, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// eraseOn commits the erasure of key on instance n (PostgreSQL's part:
// the row, the NOTIFY) and returns its id.
func eraseOn(t *testing.T, n *shipNode, key string) int64 {
	t.Helper()
	rows, err := n.cluster.EraseUsage(ctxFor(t, 30*time.Second), metrics.EraseRequest{KeyID: key, Rollups: true, RequestedBy: "admin:test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rows.ID
}

// An instance whose follower was not running when another instance
// erased a key erases it from its own data file when the follower starts.
func TestErasureFollowerCatchesUpAtStart(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	b.record(t, 700, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	id := eraseOn(t, a, "key_3")
	if n := waitingRecords(t, b); n != 700 {
		t.Fatalf("%d records in b's file before its follower ran, want 700", n)
	}
	if !slices.Contains(keyCells(t, b), "key_3") {
		t.Fatal("b's file holds no cells of key_3 before its follower ran")
	}

	follow(t, b, metrics.NewEraser(b.st, b.rec, nil), nil)
	key3 := keyCounts(700)["key_3"]
	within(t, 10*time.Second, "the erasure applied to b's data file", func() bool { return markOf(t, b) == id })
	if n := waitingRecords(t, b); n != 700-key3 {
		t.Fatalf("%d records in b's file, want %d", n, 700-key3)
	}
	if keys := keyCells(t, b); slices.Contains(keys, "key_3") || len(keys) != 6 {
		t.Fatalf("b's cells hold keys %v, want the six others", keys)
	}
}

// More erasures than the follower ever queued arrive while its eraser is
// busy: every one is applied, once, in order.
func TestErasureFollowerAppliesABurst(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	b.record(t, 700, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	gate := make(chan struct{})
	eraser := &countingEraser{Eraser: metrics.NewEraser(b.st, b.rec, nil), gate: gate}
	delivered := make(chan struct{})
	follow(t, b, eraser, map[string]func(string){"test_marker": func(string) { close(delivered) }})

	const burst = 150
	var want []string
	for i := range burst {
		key := fmt.Sprintf("key_%d", i)
		want = append(want, key)
		eraseOn(t, a, key)
	}
	// Notifications arrive in commit order: once the marker is in, every
	// erasure's notification has been handed to the follower.
	if _, err := a.cluster.Pool().Exec(ctxFor(t, 30*time.Second), `SELECT pg_notify('test_marker', '')`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-delivered:
	case <-time.After(30 * time.Second):
		t.Fatal("the marker notification never arrived")
	}
	close(gate)
	within(t, 60*time.Second, "every erasure applied", func() bool { return len(eraser.calls()) >= burst })
	if got := eraser.calls(); !slices.Equal(got, want) {
		t.Fatalf("erased %d times, %v; want %v", len(got), got, want)
	}
	within(t, 10*time.Second, "b's data file erased", func() bool { return waitingRecords(t, b) == 0 })
}

// The mark is in the data file: a follower started again (on the file
// reopened) applies only the erasures committed after the last one
// applied, and a new, empty data file applies none of those before it.
func TestErasureFollowerMarkSurvivesARestart(t *testing.T) {
	url := pg.Database(t)
	dir := t.TempDir()
	st, closeStore := openStoreIn(t, dir)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", st)
	b.record(t, 700, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	first := &countingEraser{Eraser: metrics.NewEraser(b.st, b.rec, nil)}
	stop := follow(t, b, first, nil)
	var third int64
	for _, key := range []string{"key_1", "key_2", "key_3"} {
		third = eraseOn(t, a, key)
	}
	within(t, 30*time.Second, "three erasures applied", func() bool { return markOf(t, b) == third })
	stop()
	if got := first.calls(); len(got) != 3 {
		t.Fatalf("before the restart the follower erased %v", got)
	}
	closeStore()

	st2, _ := openStoreIn(t, dir)
	b2 := newShipNode(t, url, "b", st2)
	again := &countingEraser{Eraser: metrics.NewEraser(b2.st, b2.rec, nil)}
	follow(t, b2, again, nil)
	last := eraseOn(t, a, "key_4")
	within(t, 30*time.Second, "the new erasure applied", func() bool { return len(again.calls()) > 0 })
	if got := again.calls(); !slices.Equal(got, []string{"key_4"}) {
		t.Fatalf("after the restart the follower erased %v, want only key_4", got)
	}

	fresh := newShipNode(t, url, "c", nil)
	none := &countingEraser{Eraser: metrics.NewEraser(fresh.st, fresh.rec, nil)}
	follow(t, fresh, none, nil)
	within(t, 10*time.Second, "the new file marked", func() bool { return markOf(t, fresh) == last })
	if got := none.calls(); len(got) != 0 {
		t.Fatalf("a new, empty data file replayed %v", got)
	}
}

// openStoreIn opens the data file in dir; close closes it, and the test's
// end does if close was not called.
func openStoreIn(t *testing.T, dir string) (st *store.Store, close func()) {
	t.Helper()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	close = func() {
		once.Do(func() {
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(close)
	return st, close
}

// markOf is the erasure mark of n's data file.
func markOf(t *testing.T, n *shipNode) int64 {
	t.Helper()
	mark, _, err := n.rd.ErasureMark()
	if err != nil {
		t.Fatal(err)
	}
	return mark
}

// Erasures commit in id order: one that took its id while another's
// transaction, with a smaller id, is still open waits for it. Otherwise a
// follower would apply the larger, move its mark past the smaller, and
// never apply that one.
func TestErasuresCommitInIDOrder(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	b.record(t, 700, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	eraser := &countingEraser{Eraser: metrics.NewEraser(b.st, b.rec, nil)}
	follow(t, b, eraser, nil)

	ctx := ctxFor(t, time.Minute)
	slow, err := a.cluster.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Rollback(ctx) }()
	if _, err := cluster.RecordErasure(ctx, slow, "a", "key_1"); err != nil {
		t.Fatal(err)
	}
	second := make(chan int64, 1)
	go func() {
		rows, err := a.cluster.EraseUsage(ctx, metrics.EraseRequest{KeyID: "key_2", RequestedBy: "admin:test"}, nil)
		if err != nil {
			t.Error(err)
		}
		second <- rows.ID
	}()
	waitingOnLock := func() bool {
		return countRows(t, a.cluster.Pool(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
	}
	var id2 int64
	committed := false
	within(t, 30*time.Second, "the second erasure committed or waiting", func() bool {
		select {
		case id2 = <-second:
			committed = true
			return true
		default:
			return waitingOnLock()
		}
	})
	if committed {
		// Without the order, let the follower apply it first.
		within(t, 30*time.Second, "the second erasure applied", func() bool { return markOf(t, b) == id2 })
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !committed {
		id2 = <-second
	}
	within(t, 30*time.Second, "both erasures applied", func() bool { return markOf(t, b) == id2 })
	if got := eraser.calls(); !slices.Equal(got, []string{"key_1", "key_2"}) {
		t.Fatalf("b erased %v, want key_1 then key_2", got)
	}
}

// A listener that reconnects wakes the follower: an erasure whose
// notification it missed (here: never listened for) is applied then.
func TestErasureFollowerCatchesUpAfterAReconnect(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	b.record(t, 700, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	eraser := &countingEraser{Eraser: metrics.NewEraser(b.st, b.rec, nil)}
	follow(t, b, eraser, map[string]func(string){cluster.ErasuresChannel: nil})
	// The follower's start has passed once the data file has a mark.
	within(t, 10*time.Second, "the follower started", func() bool {
		_, set, err := b.rd.ErasureMark()
		return err == nil && set
	})
	id := eraseOn(t, a, "key_3")
	if got := eraser.calls(); len(got) != 0 {
		t.Fatalf("erased %v before the reconnect", got)
	}
	if n := countRows(t, a.cluster.Pool(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`); n != 1 {
		t.Fatalf("ended %d listening connections, want b's one", n)
	}
	within(t, 30*time.Second, "the erasure applied after the reconnect", func() bool { return markOf(t, b) == id })
	if got := eraser.calls(); !slices.Equal(got, []string{"key_3"}) {
		t.Fatalf("erased %v, want key_3", got)
	}
}

// An erasure this instance cannot apply (a block of its data file does not
// decode) holds the mark where it is, and each failed catch-up is counted
// for /metrics, so a stuck follower shows before anyone reads the logs.
func TestErasureFollowerCountsAFailedCatchUp(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	b.record(t, 700, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	batches, err := b.rd.BatchesAfter(context.Background(), 0, 1<<20)
	if err != nil || len(batches) == 0 {
		t.Fatalf("%d blocks, %v; want some", len(batches), err)
	}
	err = b.st.Update(func(tx *store.Tx) error {
		day := tx.Bucket(store.BucketRaw, []byte("2026-03-01"))
		key := binary.BigEndian.AppendUint64(nil, batches[0].Seq)
		if day == nil || day.Get(key) == nil {
			return fmt.Errorf("block %d is not in day 2026-03-01", batches[0].Seq)
		}
		return day.Put(key, []byte("\x04\x00garbage"))
	})
	if err != nil {
		t.Fatal(err)
	}
	eraseOn(t, a, "key_3")

	f := cluster.NewErasureFollower(b.cluster, metrics.NewEraser(b.st, b.rec, nil))
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	t.Cleanup(func() { f.Stop(); <-done })
	within(t, 10*time.Second, "the failed catch-up counted", func() bool { return f.Failures() >= 1 })
	if got := f.Mark(); got != 0 {
		t.Fatalf("mark %d after a failed erasure, want 0 (nothing applied)", got)
	}
}
