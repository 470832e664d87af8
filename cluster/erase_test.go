package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// putCell stores a cell row as a shipper would (instance, dim, value).
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
	// The shipper wrote the instances' cells (newShipNode marks them).
	cells := func(where string, args ...any) int {
		return countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_cells WHERE `+where, args...)
	}
	key3Cells := cells(`dim = $1 AND value = 'key_3'`, int16(metrics.DimKey))
	totalCells := cells(`dim = $1`, int16(metrics.DimTotal))
	if key3Cells == 0 || totalCells == 0 {
		t.Fatalf("the fixture shipped %d cells of key_3 and %d totals", key3Cells, totalCells)
	}
	all := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records`)
	key3 := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records WHERE key_id = 'key_3'`)
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
	if got.Records != int64(key3) || got.Cells != int64(key3Cells) {
		t.Fatalf("deleted %+v, want %d records and %d cells", got, key3, key3Cells)
	}
	a.drain(t)
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records WHERE key_id = 'key_3'`); n != 0 {
		t.Fatalf("%d records of key_3 in PostgreSQL after the erasure", n)
	}
	// The 700 shipped after the erasure come without key_3's.
	// Shipped blocks have left the data file (the spool is trimmed after
	// PostgreSQL confirmed), so the local erasure found only the
	// unshipped ones.
	unshipped := local.RawRecords
	if unshipped == 0 {
		t.Fatal("none of key_3's records waited to be shipped: the test shows nothing")
	}
	if n, want := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records`), all+700-key3-unshipped; n != want {
		t.Fatalf("%d records left, want %d", n, want)
	}
	// The local erasure took the key's cells too, so shipping brings none back.
	if n := cells(`dim = $1 AND value = 'key_3'`, int16(metrics.DimKey)); n != 0 {
		t.Fatalf("%d cells of key_3 in PostgreSQL after the erasure and a drain", n)
	}
	ownerCells := cells(`(dim = $1 AND value = 'org_1') OR (dim = $2 AND value = 'key_4')`, int16(metrics.DimOwner), int16(metrics.DimKey))

	// An owner's erasure takes its cells and its keys' cells.
	got, err = a.cluster.EraseUsage(ctxFor(t, 30*time.Second), metrics.EraseRequest{OwnerID: "org_1", Rollups: true}, []string{"key_4"})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records`); n != 0 || got.Cells != int64(ownerCells) {
		t.Fatalf("after erasing the owner: %d records left, %d cells deleted (want 0 and %d)", n, got.Cells, ownerCells)
	}
	if n := cells(`dim = $1`, int16(metrics.DimTotal)); n < totalCells {
		t.Fatalf("%d total cells left, want the %d there were and more", n, totalCells)
	}
}
