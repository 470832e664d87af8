package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/telemetry"
)

// cellID names one cell: interval, dimension, value and start.
type cellID struct {
	iv    metrics.Interval
	dim   metrics.Dimension
	value string
	start time.Time
}

// fileCells reads every cell of a data file, for every interval and
// dimension, through metrics.Reader.ScanCells, merged into into.
func fileCells(t testing.TB, rd *metrics.Reader, into map[cellID]*metrics.Cell) map[cellID]*metrics.Cell {
	t.Helper()
	if into == nil {
		into = map[cellID]*metrics.Cell{}
	}
	for _, iv := range []metrics.Interval{metrics.Hourly, metrics.Daily} {
		for _, dim := range metrics.Dimensions {
			err := rd.ScanCells(context.Background(), metrics.CellQuery{Interval: iv, Dimension: dim, AllValues: true},
				func(value string, start time.Time, c *metrics.Cell) error {
					id := cellID{iv, dim, value, start}
					if into[id] == nil {
						into[id] = new(metrics.Cell)
					}
					into[id].Merge(c)
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return into
}

// databaseCells reads apiwarden_cells, decoding each row with
// Cell.UnmarshalBinary and merging the rows of one cell across
// instances, as a cluster reader does.
func databaseCells(t testing.TB, pool *pgxpool.Pool) map[cellID]*metrics.Cell {
	t.Helper()
	rows, err := pool.Query(ctxFor(t, time.Minute), `SELECT interval, dim, value, start, count, cell FROM apiwarden_cells`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[cellID]*metrics.Cell{}
	for rows.Next() {
		var iv, dim int16
		var value string
		var start time.Time
		var count int64
		var enc []byte
		if err := rows.Scan(&iv, &dim, &value, &start, &count, &enc); err != nil {
			t.Fatal(err)
		}
		var c metrics.Cell
		if err := c.UnmarshalBinary(enc); err != nil || c.Count != uint64(count) {
			t.Fatalf("row %d %d %q %s: count %d, cell count %d, %v", iv, dim, value, start, count, c.Count, err)
		}
		id := cellID{metrics.Interval(iv), metrics.Dimension(dim), value, start.UTC()}
		if out[id] == nil {
			out[id] = new(metrics.Cell)
		}
		out[id].Merge(&c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameCells fails unless the two sets hold the same cells with equal
// encodings.
func sameCells(t testing.TB, what string, got, want map[cellID]*metrics.Cell) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: no cells to compare", what)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d cells in PostgreSQL, want %d", what, len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if g == nil {
			t.Fatalf("%s: cell %v missing in PostgreSQL", what, id)
		}
		ge, _ := g.AppendBinary(nil)
		we, _ := w.AppendBinary(nil)
		if !bytes.Equal(ge, we) {
			t.Fatalf("%s: cell %v: PostgreSQL has count %d (bytes in %d, 5xx %d), the file %d (%d, %d)",
				what, id, g.Count, g.BytesIn, g.Status5xx, w.Count, w.BytesIn, w.Status5xx)
		}
	}
}

// After traffic over three UTC days and more traffic into cells shipped
// already, the cells in PostgreSQL equal the file's, for every interval
// and dimension, and nothing is left dirty.
func TestShipCellsEqualTheFile(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	start := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	n.record(t, 6000, start, 30*time.Second)
	n.drain(t)
	sameCells(t, "after the first drain", databaseCells(t, n.cluster.Pool()), fileCells(t, n.rd, nil))
	n.record(t, 2000, start.Add(time.Hour), 10*time.Millisecond) // into cells shipped already
	n.drain(t)
	sameCells(t, "after more traffic", databaseCells(t, n.cluster.Pool()), fileCells(t, n.rd, nil))
	if d, err := n.rd.DirtyCellCount(); err != nil || d != 0 {
		t.Fatalf("%d cells dirty after draining, %v", d, err)
	}
	wantShipped(t, n, 8000)
}

// A shipper that dies between PostgreSQL's commit and the clear ships
// the same cells again after the restart: the values are absolute, so
// nothing doubles.
func TestShipCellsCrashBeforeClear(t *testing.T) {
	url := pg.Database(t)
	n := newShipNode(t, url, "a", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n.record(t, 3000, start, time.Second)
	crash := errors.New("crashed after commit")
	n.ship.SetShipAfterCommit(func() error { return crash })
	if _, err := n.ship.ShipOnce(ctxFor(t, time.Minute)); !errors.Is(err, crash) {
		t.Fatalf("first round: %v, want the injected crash", err)
	}
	if d, _ := n.rd.DirtyCellCount(); d == 0 {
		t.Fatal("no cell dirty after the crashed round")
	}
	sameCells(t, "after the crashed round", databaseCells(t, n.cluster.Pool()), fileCells(t, n.rd, nil))

	restarted := newShipNode(t, url, "a", n.st)
	restarted.drain(t)
	sameCells(t, "after the restart", databaseCells(t, n.cluster.Pool()), fileCells(t, n.rd, nil))
	wantShipped(t, restarted, 3000)
}

// With raw records sampled at 10% the cells in PostgreSQL still count
// every request.
func TestShipCellsExactWhenSampled(t *testing.T) {
	n := newShipNodeWith(t, pg.Database(t), "a", metrics.Options{SampleRate: 0.1, MarkChangedCells: true})
	n.record(t, 5000, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Second)
	n.drain(t)
	rows, _ := shippedCounts(t, n)
	if rows < 300 || rows > 700 {
		t.Fatalf("%d raw records shipped at a 10%% sample of 5000", rows)
	}
	cells := databaseCells(t, n.cluster.Pool())
	sameCells(t, "sampled", cells, fileCells(t, n.rd, nil))
	if total := cells[cellID{metrics.Daily, metrics.DimTotal, "", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}]; total == nil || total.Count != 5000 {
		t.Fatalf("daily total in PostgreSQL: %+v, want 5000", total)
	}
}

// A round runs for changed cells alone: with every raw record sampled
// out there are no blocks, and the cells still ship.
func TestShipCellsWithoutRawBlocks(t *testing.T) {
	n := newShipNodeWith(t, pg.Database(t), "a", metrics.Options{SampleRate: 1e-12, MarkChangedCells: true})
	n.record(t, 500, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Second)
	// What waits is cells alone, and the backlog and its gauge say so.
	dirty, err := n.rd.DirtyCellCount()
	if err != nil || dirty == 0 {
		t.Fatalf("%d cells dirty after recording, %v", dirty, err)
	}
	waitingCells(t, n, dirty)
	if b, _ := n.ship.Backlog(); b.Records != 0 {
		t.Fatalf("%d raw records kept at a sample rate of 1e-12", b.Records)
	}
	got, err := n.ship.ShipOnce(ctxFor(t, time.Minute))
	if err != nil || got == 0 {
		t.Fatalf("round over cells alone: %d, %v", got, err)
	}
	n.drain(t)
	sameCells(t, "cells alone", databaseCells(t, n.cluster.Pool()), fileCells(t, n.rd, nil))
	waitingCells(t, n, 0)
}

// waitingCells checks that n's backlog, and the gauge /metrics shows,
// count want cells waiting to ship.
func waitingCells(t *testing.T, n *shipNode, want int) {
	t.Helper()
	if b, err := n.ship.Backlog(); err != nil || b.Cells != want {
		t.Fatalf("backlog %+v, %v; want %d cells waiting", b, err, want)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.Shipping(n.ship))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "apiwarden_cluster_ship_waiting_cells" {
			if got := f.GetMetric()[0].GetGauge().GetValue(); got != float64(want) {
				t.Fatalf("apiwarden_cluster_ship_waiting_cells %v, want %d", got, want)
			}
			return
		}
	}
	t.Fatal("no apiwarden_cluster_ship_waiting_cells on /metrics")
}

// Two instances' files shipped into one database: the merged rows equal
// the sum of the two files' cells.
func TestShipCellsTwoInstancesSum(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a.record(t, 3000, start, time.Second)
	b.record(t, 2000, start.Add(30*time.Minute), 2*time.Second)
	a.drain(t)
	b.drain(t)
	want := fileCells(t, b.rd, fileCells(t, a.rd, nil))
	sameCells(t, "two instances", databaseCells(t, a.cluster.Pool()), want)
	var rowsA, rowsB int
	if err := a.cluster.Pool().QueryRow(ctxFor(t, time.Minute), `SELECT count(*) FILTER (WHERE instance_id = 'a'),
		count(*) FILTER (WHERE instance_id = 'b') FROM apiwarden_cells`).Scan(&rowsA, &rowsB); err != nil {
		t.Fatal(err)
	}
	if rowsA != len(fileCells(t, a.rd, nil)) || rowsB != len(fileCells(t, b.rd, nil)) {
		t.Fatalf("rows a %d, b %d; want one per cell of each file", rowsA, rowsB)
	}
}

// A flush between a round's read and its clear changes cells the round
// shipped: the clear must leave them dirty (their generation moved), so
// the next round ships the new values.
func TestShipCellsFlushBetweenReadAndClear(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n.record(t, 1000, start, time.Second)
	flushed := false
	n.ship.SetShipAfterCommit(func() error {
		if !flushed {
			flushed = true
			n.record(t, 700, start.Add(10*time.Minute), time.Second) // the same hour, day and values
		}
		return nil
	})
	n.drain(t)
	if !flushed {
		t.Fatal("no round ran")
	}
	sameCells(t, "after a flush between read and clear", databaseCells(t, n.cluster.Pool()), fileCells(t, n.rd, nil))
	wantShipped(t, n, 1700)
}

// Rounds stay bounded by MaxCells, and every cell ships over several.
func TestShipCellsRoundsBounded(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	sh, err := cluster.NewShipper(n.cluster, n.rd, cluster.ShipperOptions{MaxCells: 5})
	if err != nil {
		t.Fatal(err)
	}
	n.record(t, 400, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 10*time.Second)
	rounds := 0
	for {
		got, err := sh.ShipOnce(ctxFor(t, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			break
		}
		rounds++
	}
	cells := fileCells(t, n.rd, nil)
	if rounds < len(cells)/5 {
		t.Fatalf("%d rounds for %d cells at 5 a round", rounds, len(cells))
	}
	sameCells(t, "bounded rounds", databaseCells(t, n.cluster.Pool()), cells)
}
