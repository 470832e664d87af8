package metrics

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// recordFlushes records flushes × perFlush records from start on, one a
// second, committing each flush on its own (one block per flush and day).
func recordFlushes(t *testing.T, rec *Recorder, start time.Time, flushes, perFlush int) {
	t.Helper()
	for f := range flushes {
		for i := range perFlush {
			n := f*perFlush + i
			rec.Record(&Record{Time: start.Add(time.Duration(n) * time.Second), RequestID: fmt.Sprint(n), Status: 200})
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

func rollupCount(t *testing.T, rd *Reader) uint64 {
	t.Helper()
	sum, err := rd.Sum(context.Background(), CellQuery{Interval: Hourly, Dimension: DimTotal})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Count
}

// TrimShipped deletes exactly the blocks up to the cursor, across days and
// over more than one transaction's worth, and leaves the rollups alone.
func TestTrimShippedDeletesUpToTheCursor(t *testing.T) {
	rec, rd := newTestRecorder(t, Options{})
	// One flush of a record a day for 300 days: 300 blocks, more than one
	// transaction deletes.
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range 300 {
		rec.Record(&Record{Time: start.AddDate(0, 0, i), RequestID: fmt.Sprint("d", i), Status: 200})
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	recordFlushes(t, rec, start.AddDate(0, 0, 299), 2, 10) // two more blocks on the last day
	all, err := rd.BatchesAfter(context.Background(), 0, 1<<20)
	if err != nil || len(all) != 302 {
		t.Fatalf("%d blocks, %v; want 302", len(all), err)
	}
	upTo := all[300].Seq // the 300 daily blocks and the first flush after them
	n, err := rd.TrimShipped(context.Background(), upTo)
	if err != nil || n != 301 {
		t.Fatalf("trimmed %d blocks, %v; want 301", n, err)
	}
	left, err := rd.BatchesAfter(context.Background(), 0, 1<<20)
	if err != nil || len(left) != 1 || left[0].Seq != all[301].Seq {
		t.Fatalf("left after trimming: %d blocks, %v; want the last one", len(left), err)
	}
	if got := len(allRecords(t, rd, RecordQuery{})); got != 10 {
		t.Fatalf("%d raw records left, want 10", got)
	}
	if got := rollupCount(t, rd); got != 320 {
		t.Fatalf("rollups count %d after trimming, want all 320", got)
	}
	if n, err := rd.TrimShipped(context.Background(), upTo); err != nil || n != 0 {
		t.Fatalf("trimming again: %d, %v; want nothing", n, err)
	}
}

// DropUnshipped deletes the oldest unshipped blocks until the bound holds,
// never a shipped one, counts them in the file, and leaves the rollups.
func TestDropUnshippedBoundsTheSpool(t *testing.T) {
	rec, rd := newTestRecorder(t, Options{})
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	recordFlushes(t, rec, start, 5, 10)
	all, err := rd.BatchesAfter(context.Background(), 0, 1<<20)
	if err != nil || len(all) != 5 {
		t.Fatalf("%d blocks, %v; want 5", len(all), err)
	}
	if err := rd.SetShipCursor(all[0].Seq); err != nil {
		t.Fatal(err)
	}
	if d, err := rd.DropUnshipped(context.Background(), 40); err != nil || d.Blocks != 0 {
		t.Fatalf("40 waiting under a bound of 40: dropped %+v, %v", d, err)
	}
	d, err := rd.DropUnshipped(context.Background(), 25)
	want := SpoolDrop{Blocks: 2, Records: 20, From: start.Add(10 * time.Second), To: start.Add(29 * time.Second)}
	if err != nil || d != want {
		t.Fatalf("dropped %+v, %v; want %+v", d, err, want)
	}
	left, _ := rd.BatchesAfter(context.Background(), all[0].Seq, 1<<20)
	if len(left) != 2 || left[0].Seq != all[3].Seq {
		t.Fatalf("waiting after the drop: %+v; want the newest two blocks", left)
	}
	if n, err := rd.ShipDropped(); err != nil || n != 20 {
		t.Fatalf("dropped total %d, %v; want 20", n, err)
	}
	if got := len(allRecords(t, rd, RecordQuery{})); got != 30 {
		t.Fatalf("%d raw records, want 30 (10 shipped, 20 waiting)", got)
	}
	if got := rollupCount(t, rd); got != 50 {
		t.Fatalf("rollups count %d after the drop, want all 50", got)
	}
	if d, err := rd.DropUnshipped(context.Background(), 5); err != nil || d.Records != 20 {
		t.Fatalf("a bound of 5 under blocks of 10: dropped %+v, %v; want both blocks", d, err)
	}
	if n, _ := rd.ShipDropped(); n != 40 {
		t.Fatalf("dropped total %d after a second drop, want 40", n)
	}
}

// overwriteBlock replaces the stored bytes of the block seq in day.
func overwriteBlock(t *testing.T, st *store.Store, day string, seq uint64, value []byte) {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		b := tx.Bucket(store.BucketRaw, []byte(day))
		if b == nil || b.Get(blockKey(seq)) == nil {
			return fmt.Errorf("no block %d in %s", seq, day)
		}
		return b.Put(blockKey(seq), value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A block that does not decode comes back from BatchesAfter named and
// empty, between its neighbours, and counts nothing in the backlog.
func TestBatchesAfterNamesACorruptBlock(t *testing.T) {
	st := storetest.MustOpen(t)
	rec, rd := newTestRecorder(t, Options{Store: st})
	start := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	recordFlushes(t, rec, start, 3, 10)
	all, _ := rd.BatchesAfter(context.Background(), 0, 1<<20)
	cases := []struct {
		value   []byte
		backlog int // a readable header still counts its records
	}{{mustBlockHeader(t, st, all[1].Seq), 30}, {[]byte("not a block"), 20}}
	for _, c := range cases {
		overwriteBlock(t, st, "2026-05-01", all[1].Seq, c.value)
		got, err := rd.BatchesAfter(context.Background(), 0, 1<<20)
		if err != nil || len(got) != 3 || len(got[0].Records) != 10 || len(got[2].Records) != 10 {
			t.Fatalf("%d batches, %v; want 3 with the middle one corrupt", len(got), err)
		}
		if m := got[1]; m.Seq != all[1].Seq || len(m.Records) != 0 || !errors.Is(m.Corrupt, ErrCorruptBlock) {
			t.Fatalf("middle batch: seq %d, %d records, %v", m.Seq, len(m.Records), m.Corrupt)
		}
		if b, err := rd.ShipBacklog(); err != nil || b.Records != c.backlog {
			t.Fatalf("backlog %+v, %v; want %d records", b, err, c.backlog)
		}
	}
}

// mustBlockHeader returns the block seq cut after its header: a valid
// header with no body.
func mustBlockHeader(t *testing.T, st *store.Store, seq uint64) []byte {
	t.Helper()
	var out []byte
	err := st.View(func(tx *store.Tx) error {
		v := tx.Bucket(store.BucketRaw, []byte("2026-05-01")).Get(blockKey(seq))
		_, body, err := parseBlockHeader(v)
		out = append(out, v[:len(v)-len(body)]...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
