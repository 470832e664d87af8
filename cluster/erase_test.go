package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// putCell stores a cell row as a shipper would (instance, dim, value).
func putCell(t *testing.T, n *shipNode, dim metrics.Dimension, value string) {
	t.Helper()
	var c metrics.Cell
	c.Add(&metrics.Record{Status: 200, Latency: time.Millisecond})
	cell, _ := c.AppendBinary(nil)
	_, err := n.cluster.Pool().Exec(ctxFor(t, 30*time.Second), `INSERT INTO apiwarden_cells
		(interval, dim, value, start, instance_id, count, cell) VALUES (1, $1, $2, $3, $4, 1, $5)`,
		int16(dim), value, time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC), n.id, cell)
	if err != nil {
		t.Fatal(err)
	}
}

// Erasing a key deletes its shipped records of every instance and, with
// rollups, its cells; a block erased locally before it was shipped
// arrives without the key's records; other rows stay.
func TestEraseUsageDeletesShippedRows(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	start := time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC)
	a.record(t, 3000, start, time.Second)
	b.record(t, 2000, start, time.Second)
	a.drain(t)
	b.drain(t)
	a.record(t, 700, start.Add(2*time.Hour), time.Second) // not shipped yet
	for _, cell := range []struct {
		dim   metrics.Dimension
		value string
	}{{metrics.DimKey, "key_3"}, {metrics.DimKey, "key_4"}, {metrics.DimTotal, ""}, {metrics.DimOwner, "org_1"}} {
		putCell(t, a, cell.dim, cell.value)
		putCell(t, b, cell.dim, cell.value)
	}
	all := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records`)
	key3 := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records WHERE key_id = 'key_3'`)
	key3a := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records WHERE key_id = 'key_3' AND instance_id = 'a'`)
	if key3 == 0 {
		t.Fatal("the fixture shipped no records of key_3")
	}

	req := metrics.EraseRequest{KeyID: "key_3", Rollups: true}
	local, err := metrics.NewEraser(a.st, a.rec, nil).Erase(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.cluster.EraseUsage(ctxFor(t, 30*time.Second), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != int64(key3) || got.Cells != 2 {
		t.Fatalf("deleted %+v, want %d records and 2 cells", got, key3)
	}
	a.drain(t)
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records WHERE key_id = 'key_3'`); n != 0 {
		t.Fatalf("%d records of key_3 in PostgreSQL after the erasure", n)
	}
	// The 700 shipped after the erasure come without key_3's.
	unshipped := local.RawRecords - key3a
	if unshipped == 0 {
		t.Fatal("none of key_3's records waited to be shipped: the test shows nothing")
	}
	if n, want := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records`), all+700-key3-unshipped; n != want {
		t.Fatalf("%d records left, want %d", n, want)
	}
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_cells`); n != 6 {
		t.Fatalf("%d cells left, want the 6 of other values", n)
	}

	// An owner's erasure takes its cells and its keys' cells.
	got, err = a.cluster.EraseUsage(ctxFor(t, 30*time.Second), metrics.EraseRequest{OwnerID: "org_1", Rollups: true}, []string{"key_4"})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records`); n != 0 || got.Cells != 4 {
		t.Fatalf("after erasing the owner: %d records left, %d cells deleted (want 0 and 4)", n, got.Cells)
	}
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_cells WHERE dim = $1`, int16(metrics.DimTotal)); n != 2 {
		t.Fatalf("%d total cells left, want 2", n)
	}
}
