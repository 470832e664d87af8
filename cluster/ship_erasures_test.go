package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// keyCounts is how many of the first n records shipNode.record writes go
// to each key (key_0 … key_6, in turn).
func keyCounts(n int) map[string]int {
	out := map[string]int{}
	for i := range n {
		out[fmt.Sprintf("key_%d", i%7)]++
	}
	return out
}

// An erasure run on instance a reaches the records and cells of the key
// that wait unshipped in instance b's data file: b's next drain ships
// none of them, and everything else exactly.
func TestShipperDropsRecordsErasedElsewhere(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	a.record(t, 1400, start, time.Second)
	b.record(t, 2100, start, time.Second)
	a.drain(t)
	b.drain(t)
	b.record(t, 700, start.Add(2*time.Hour), time.Second) // waits in b's data file

	req := metrics.EraseRequest{KeyID: "key_3", Rollups: true, RequestedBy: "admin:test"}
	if _, err := metrics.NewEraser(a.st, a.rec, nil).Erase(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got, err := a.cluster.EraseUsage(ctxFor(t, 30*time.Second), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := a.cluster.Pool()
	if n := countRows(t, pool, `SELECT count(*) FROM apiwarden_erasures
		WHERE id = $1 AND key_ids = '{key_3}' AND owner_id = '' AND rollups AND requested_by = 'admin:test'`, got.ID); n != 1 {
		t.Fatalf("erasure %d: %d matching rows in apiwarden_erasures, want 1", got.ID, n)
	}

	b.drain(t)
	if n := countRows(t, pool, `SELECT count(*) FROM apiwarden_records WHERE key_id = 'key_3'`); n != 0 {
		t.Fatalf("%d records of key_3 in PostgreSQL after b's drain", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM apiwarden_cells WHERE dim = $1 AND value = 'key_3'`, int16(metrics.DimKey)); n != 0 {
		t.Fatalf("%d cells of key_3 in PostgreSQL after b's drain", n)
	}
	if n := b.ship.ErasedRecords(); n != uint64(keyCounts(700)["key_3"]) {
		t.Fatalf("b dropped %d erased records, want %d", n, keyCounts(700)["key_3"])
	}
	// Every other key's records and hourly cells, exactly.
	fromA, fromB, laterB := keyCounts(1400), keyCounts(2100), keyCounts(700)
	for k := range 7 {
		key := fmt.Sprintf("key_%d", k)
		if key == "key_3" {
			continue
		}
		want := fromA[key] + fromB[key] + laterB[key]
		if n := countRows(t, pool, `SELECT count(*) FROM apiwarden_records WHERE key_id = $1`, key); n != want {
			t.Errorf("%s: %d records in PostgreSQL, want %d", key, n, want)
		}
		for inst, want := range map[string]int{"a": fromA[key], "b": fromB[key] + laterB[key]} {
			if n := countRows(t, pool, `SELECT coalesce(sum(count), 0)::int FROM apiwarden_cells
				WHERE interval = $1 AND dim = $2 AND value = $3 AND instance_id = $4`,
				int16(metrics.Hourly), int16(metrics.DimKey), key, inst); n != want {
				t.Errorf("%s: instance %s's hourly cells count %d, want %d", key, inst, n, want)
			}
		}
	}
	// Records written after the erasure ship as usual.
	b.record(t, 70, time.Now().UTC().Add(time.Minute), time.Millisecond)
	b.drain(t)
	if n := countRows(t, pool, `SELECT count(*) FROM apiwarden_records WHERE key_id = 'key_3'`); n != 10 {
		t.Fatalf("%d records of key_3 recorded after the erasure shipped, want 10", n)
	}
}

// BenchmarkShipWithErasures is BenchmarkShip with 1,000 erasures of other
// keys on record, all newer than every record: the filter's cost when
// each round reads them all and checks every record against them.
func BenchmarkShipWithErasures(b *testing.B) {
	const n = 200_000
	for range b.N {
		b.StopTimer()
		node := newDrainNode(b, metrics.Options{MarkChangedCells: true})
		if _, err := node.cluster.Pool().Exec(ctxFor(b, time.Minute), `INSERT INTO apiwarden_erasures
			(key_ids, owner_id, rollups, requested_by, instance_id)
			SELECT ARRAY['gone_' || i], 'org_gone_' || i, true, 'bench', 'other' FROM generate_series(1, 1000) i`); err != nil {
			b.Fatal(err)
		}
		node.record(b, n, time.Now().UTC().Add(-36*time.Hour), 500*time.Millisecond)
		took := node.timedDrain(b, n)
		b.ReportMetric(float64(n)/took.Seconds(), "records/s")
		b.StartTimer()
	}
}
