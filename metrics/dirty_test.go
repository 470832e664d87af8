package metrics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store/storetest"
)

// cellID names a cell across the bbolt scan and the dirty set.
type cellID struct {
	iv    Interval
	dim   Dimension
	value string
	start time.Time
}

// storedCellCounts reads the Count of every stored cell.
func storedCellCounts(t *testing.T, rd *Reader) map[cellID]uint64 {
	t.Helper()
	out := map[cellID]uint64{}
	for _, iv := range []Interval{Hourly, Daily} {
		for _, dim := range Dimensions {
			err := rd.ScanCells(context.Background(), CellQuery{Interval: iv, Dimension: dim, AllValues: true},
				func(value string, start time.Time, c *Cell) error {
					out[cellID{iv, dim, value, start}] = c.Count
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// dirtyCounts reads every dirty cell in one round and returns its Count
// by cell, failing on a cell that does not decode as its Count says.
func dirtyCounts(t *testing.T, rd *Reader) (map[cellID]uint64, []DirtyCell) {
	t.Helper()
	w, err := rd.ShipWork(context.Background(), ShipQuery{MaxCells: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	out := map[cellID]uint64{}
	for _, d := range w.Cells {
		var c Cell
		if err := c.UnmarshalBinary(d.Cell); err != nil || c.Count != d.Count {
			t.Fatalf("dirty cell %+v: decodes to count %d, %v", d, c.Count, err)
		}
		out[cellID{d.Interval, d.Dimension, d.Value, d.Start}] = d.Count
	}
	return out, w.Cells
}

func recordSome(t *testing.T, r *Recorder, at time.Time, n int, keys int) {
	t.Helper()
	for i := range n {
		r.Record(&Record{Time: at.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprint(at.Unix(), "-", i),
			Method: "GET", Route: "/r", Status: 200 + i%4*100, KeyID: fmt.Sprint("k", i%keys), Tier: "free", OwnerID: "o"})
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Every cell a flush changed is dirty with its absolute value; a clear
// of what was read empties the set.
func TestDirtyCellsAreTheChangedCells(t *testing.T) {
	r, rd := newTestRecorder(t, Options{MarkChangedCells: true, SampleRate: 0.1})
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	recordSome(t, r, at, 500, 7)
	recordSome(t, r, at.Add(3*time.Hour), 300, 3)
	want := storedCellCounts(t, rd)
	got, cells := dirtyCounts(t, rd)
	if len(got) != len(want) {
		t.Fatalf("%d dirty cells, %d stored", len(got), len(want))
	}
	for id, n := range want {
		if got[id] != n {
			t.Fatalf("cell %+v: dirty count %d, stored %d", id, got[id], n)
		}
	}
	if n, err := rd.ClearShippedCells(cells); err != nil || n != len(cells) {
		t.Fatalf("cleared %d of %d, %v", n, len(cells), err)
	}
	if n, _ := rd.DirtyCellCount(); n != 0 {
		t.Fatalf("%d dirty after the clear", n)
	}
	recordSome(t, r, at.Add(3*time.Hour+30*time.Minute), 10, 1) // k0 in hour 13 only
	got, _ = dirtyCounts(t, rd)
	// total, route, key k0, owner, tier, four status classes: hourly and daily.
	if len(got) != 2*9 || got[cellID{Hourly, DimTotal, "", at.Add(3 * time.Hour)}] != 310 {
		t.Fatalf("after a small flush: %v", got)
	}
}

// A flush between the read and the clear re-dirties the cells it
// changes: the clear leaves them, and the next read has the new value.
func TestClearKeepsCellsChangedAfterTheRead(t *testing.T) {
	r, rd := newTestRecorder(t, Options{MarkChangedCells: true})
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	recordSome(t, r, at, 100, 2)
	_, read := dirtyCounts(t, rd)
	recordSome(t, r, at.Add(20*time.Minute), 50, 1) // k0 again, not k1
	if _, err := rd.ClearShippedCells(read); err != nil {
		t.Fatal(err)
	}
	got, _ := dirtyCounts(t, rd)
	total := cellID{Hourly, DimTotal, "", at}
	if got[total] != 150 || got[cellID{Daily, DimKey, "k0", at.Truncate(24 * time.Hour)}] != 100 {
		t.Fatalf("cells changed after the read: %v; want total 150 and k0 100 still dirty", got)
	}
	if _, ok := got[cellID{Hourly, DimKey, "k1", at}]; ok {
		t.Fatal("k1, unchanged since the read, is still dirty")
	}
}

// Turning the option on for a file with cells marks them all, so they
// ship too.
func TestMarkingStartsWithEveryStoredCell(t *testing.T) {
	st := storetest.MustOpen(t)
	plain, rd := newTestRecorder(t, Options{Store: st})
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	recordSome(t, plain, at, 100, 3)
	plain.Stop()
	if n, _ := rd.DirtyCellCount(); n != 0 {
		t.Fatalf("%d dirty cells without the option", n)
	}
	marking, _ := newTestRecorder(t, Options{Store: st, MarkChangedCells: true})
	recordSome(t, marking, at.AddDate(0, 0, 2), 10, 1)
	want := storedCellCounts(t, rd)
	got, _ := dirtyCounts(t, rd)
	if len(got) != len(want) || got[cellID{Daily, DimTotal, "", at.Truncate(24 * time.Hour)}] != 100 {
		t.Fatalf("%d dirty of %d stored: %v", len(got), len(want), got)
	}
}

// The stored cells are marked a step a flush, and all of them in the end.
func TestMarkingStoredCellsGoesInSteps(t *testing.T) {
	st := storetest.MustOpen(t)
	plain, rd := newTestRecorder(t, Options{Store: st})
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	recordSome(t, plain, at, 300, 40)
	plain.Stop()
	stored := len(storedCellCounts(t, rd))
	marking, _ := newTestRecorder(t, Options{Store: st, MarkChangedCells: true})
	marking.rollups.backfillStep = 10
	flushes := 0
	for {
		recordSome(t, marking, at.AddDate(0, 0, 2), 1, 1)
		flushes++
		if n, _ := rd.DirtyCellCount(); n == len(storedCellCounts(t, rd)) {
			break
		}
		if flushes > stored {
			t.Fatalf("after %d flushes %d of %d cells marked", flushes, func() int { n, _ := rd.DirtyCellCount(); return n }(), stored)
		}
	}
	if flushes < stored/10-1 {
		t.Fatalf("%d stored cells marked in %d flushes of at most 10", stored, flushes)
	}
	got, _ := dirtyCounts(t, rd)
	want := storedCellCounts(t, rd)
	for id, n := range want {
		if got[id] != n {
			t.Fatalf("cell %+v: dirty %d, stored %d", id, got[id], n)
		}
	}
}

// Retention deletes a cell's dirty key with the cell.
func TestRetentionForgetsDirtyCells(t *testing.T) {
	clock := &testClock{}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	clock.Set(at)
	r, rd := newTestRecorder(t, Options{Now: clock.Now, MarkChangedCells: true, HourlyRetentionDays: 2})
	recordSome(t, r, at, 50, 2)
	clock.Set(at.AddDate(0, 0, 3))
	recordSome(t, r, at.AddDate(0, 0, 3), 50, 2)
	if _, err := r.ApplyRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, cells := dirtyCounts(t, rd)
	for _, d := range cells {
		if d.Interval == Hourly && d.Start.Before(at.AddDate(0, 0, 1)) {
			t.Fatalf("dirty key of a deleted hourly cell: %+v", d)
		}
	}
	if len(got) != len(storedCellCounts(t, rd)) {
		t.Fatalf("%d dirty, %d stored", len(got), len(storedCellCounts(t, rd)))
	}
}

// Rounds bounded by MaxCells resume where the last stopped and wrap
// around, so each key comes up once per pass.
func TestShipWorkCellRoundsWrapAround(t *testing.T) {
	r, rd := newTestRecorder(t, Options{MarkChangedCells: true})
	recordSome(t, r, time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC), 100, 9)
	all, _ := dirtyCounts(t, rd)
	var order []string
	var from []byte
	for len(order) < len(all) {
		w, err := rd.ShipWork(context.Background(), ShipQuery{MaxCells: 4, CellsFrom: from})
		if err != nil || len(w.Cells) == 0 || len(w.Cells) > 4 {
			t.Fatalf("round: %d cells, %v", len(w.Cells), err)
		}
		for _, d := range w.Cells {
			order = append(order, string(d.key))
		}
		from = w.CellsResume
	}
	seen := map[string]bool{}
	for _, k := range order[:len(all)] {
		if seen[k] {
			t.Fatalf("key %q came up twice before every key came up once", k)
		}
		seen[k] = true
	}
	// A pass starting in the middle wraps to the keys before it.
	w, _ := rd.ShipWork(context.Background(), ShipQuery{MaxCells: 4})
	w, _ = rd.ShipWork(context.Background(), ShipQuery{MaxCells: 1 << 20, CellsFrom: w.CellsResume})
	if len(w.Cells) != len(all) || w.CellsResume != nil {
		t.Fatalf("from the middle: %d cells (resume %q), want all %d", len(w.Cells), w.CellsResume, len(all))
	}
}
