package cluster_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/metrics"
)

// Realistic traffic for the cells benchmarks: how many distinct values
// each dimension has (docs/BENCHMARKS.md says why these).
const (
	benchKeys   = 1000
	benchRoutes = 50
	benchOwners = 300
	benchTiers  = 3
)

// recordRealistic records count requests from start on, one every step,
// spread over benchKeys keys (each with its owner and tier) and
// benchRoutes routes, with latencies from 1 ms to 2 s, and flushes.
func (n *shipNode) recordRealistic(t testing.TB, count int, start time.Time, step time.Duration) {
	t.Helper()
	for j := range count {
		n.next++
		i := n.next // spread over the values across calls too
		key := (i * 7919) % benchKeys
		rec := metrics.Record{
			Time: start.Add(time.Duration(j) * step), RequestID: fmt.Sprintf("%s-%d", n.id, n.next),
			Method: "GET", Route: fmt.Sprintf("/api/v1/r%d/*", i%benchRoutes), Path: fmt.Sprintf("/api/v1/r%d/%d", i%benchRoutes, i),
			Status: []int{200, 200, 200, 201, 304, 404, 429, 500}[i%8], Latency: time.Duration(1+(i*37)%2000) * time.Millisecond,
			RequestBytes: int64(i % 900), ResponseBytes: int64(200 + i%5000),
			KeyID: fmt.Sprintf("key_%04d", key), OwnerID: fmt.Sprintf("org_%03d", key%benchOwners),
			Tier: []string{"free", "pro", "enterprise"}[key%benchTiers], ClientIP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}),
			Country: "DE", UserAgent: "python-requests/2.32.3", Decision: decision.Valid,
		}
		for !n.rec.Record(&rec) {
			if err := n.rec.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.rec.Flush(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkShipCells records 200,000 requests over 36 hours of realistic
// traffic (1,000 keys, 50 routes, 300 owners, 3 tiers) into a fresh data
// file, outside the timing, and times draining it into an empty
// database with the default rounds: raw-only (the Recorder marks no
// cells, as before cells were shipped) and with-cells (cluster mode
// today). It reports records/s over the drain, and the rows and bytes of
// apiwarden_cells (table, TOAST and primary key).
func BenchmarkShipCells(b *testing.B) {
	const n = 200_000
	for _, mode := range []string{"raw-only", "with-cells"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				node := newDrainNode(b, metrics.Options{MarkChangedCells: mode == "with-cells"})
				node.recordRealistic(b, n, time.Now().UTC().Add(-36*time.Hour), 648*time.Millisecond)
				took := node.timedDrain(b, n)
				var rows, bytes int64
				if err := node.cluster.Pool().QueryRow(ctxFor(b, time.Minute), `SELECT count(*),
					pg_total_relation_size('apiwarden_cells') FROM apiwarden_cells`).Scan(&rows, &bytes); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(n)/took.Seconds(), "records/s")
				b.ReportMetric(float64(rows), "cell-rows")
				if rows > 0 {
					b.ReportMetric(float64(bytes)/float64(rows), "bytes/cell-row")
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkShipCellMethods upserts the same 10,000 cells twice (inserts,
// then updates with higher counts) into apiwarden_cells, in one
// transaction each, two ways: the shipper's one INSERT ... SELECT FROM
// unnest(arrays) ON CONFLICT DO UPDATE, and CopyFrom into a temporary
// table (ON COMMIT DROP) followed by one INSERT ... SELECT ... ON
// CONFLICT: the choice behind cluster/ship_cells.go, in cells/s.
func BenchmarkShipCellMethods(b *testing.B) {
	const cells = 10_000
	var sample metrics.Cell
	for i := range 500 {
		sample.Add(&metrics.Record{Status: 200 + i%4*100, Latency: time.Duration(1+i*13%1500) * time.Millisecond, RequestBytes: 300, ResponseBytes: 2048})
	}
	enc, _ := sample.AppendBinary(nil)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	type row struct {
		iv, dim int16
		value   string
		start   time.Time
	}
	rows := make([]row, cells)
	for i := range rows {
		rows[i] = row{int16(1 + i%2), int16(3), fmt.Sprintf("key_%04d", i/48), day.Add(time.Duration(i%48) * time.Hour)}
	}
	const upsert = ` ON CONFLICT (interval, dim, value, start, instance_id)
		DO UPDATE SET count = EXCLUDED.count, cell = EXCLUDED.cell WHERE apiwarden_cells.count < EXCLUDED.count`
	for _, method := range []string{"unnest", "copy-temp"} {
		b.Run(method, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				node := newShipNode(b, pg.Database(b), "bench", nil)
				pool := node.cluster.Pool()
				ctx := ctxFor(b, 5*time.Minute)
				b.StartTimer()
				started := time.Now()
				for pass := range int64(2) {
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if method == "unnest" {
							ivs, dims := make([]int16, cells), make([]int16, cells)
							values, starts := make([]string, cells), make([]time.Time, cells)
							counts, encs := make([]int64, cells), make([][]byte, cells)
							for i, r := range rows {
								ivs[i], dims[i], values[i], starts[i], counts[i], encs[i] = r.iv, r.dim, r.value, r.start, 500+pass, enc
							}
							_, err := tx.Exec(ctx, `INSERT INTO apiwarden_cells (interval, dim, value, start, instance_id, count, cell)
								SELECT i, d, v, s, $1, n, c FROM unnest($2::smallint[], $3::smallint[], $4::text[],
								$5::timestamptz[], $6::bigint[], $7::bytea[]) AS u(i, d, v, s, n, c)`+upsert,
								"bench", ivs, dims, values, starts, counts, encs)
							return err
						}
						if _, err := tx.Exec(ctx, `CREATE TEMP TABLE cells_in (LIKE apiwarden_cells) ON COMMIT DROP`); err != nil {
							return err
						}
						if _, err := tx.CopyFrom(ctx, pgx.Identifier{"cells_in"},
							[]string{"interval", "dim", "value", "start", "instance_id", "count", "cell"},
							pgx.CopyFromSlice(cells, func(i int) ([]any, error) {
								r := rows[i]
								return []any{r.iv, r.dim, r.value, r.start, "bench", 500 + pass, enc}, nil
							})); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, `INSERT INTO apiwarden_cells SELECT * FROM cells_in`+upsert)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				took := time.Since(started)
				b.StopTimer()
				b.ReportMetric(2*cells/took.Seconds(), "cells/s")
				b.StartTimer()
			}
		})
	}
}

// BenchmarkCellsPerDay sizes what cells cost PostgreSQL at 1M requests a
// day of realistic traffic (1,000 keys, 50 routes, 300 owners, 3 tiers)
// on one instance. day: a whole UTC day recorded, then shipped: the live
// rows and bytes (table, TOAST and primary key) of apiwarden_cells and
// of the raw records. hour: one hour at the same rate shipped as a live
// instance does, a flush and a round every second (12 requests each):
// the cell rows written per day (each round rewrites the rows of the
// cells it changed) and the WAL a day of it writes, raw records
// included. Run it once: -benchtime 1x.
func BenchmarkCellsPerDay(b *testing.B) {
	const perDay = 1_000_000
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	b.Run("day", func(b *testing.B) {
		for range b.N {
			node := newDrainNode(b, metrics.Options{MarkChangedCells: true})
			node.recordRealistic(b, perDay, day, 24*time.Hour/perDay)
			node.drain(b)
			var rows, cellBytes, rawBytes int64
			if err := node.cluster.Pool().QueryRow(ctxFor(b, time.Minute), `SELECT (SELECT count(*) FROM apiwarden_cells),
				pg_total_relation_size('apiwarden_cells'),
				(SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('apiwarden_records') WHERE isleaf)`).
				Scan(&rows, &cellBytes, &rawBytes); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(rows), "cell-rows/day")
			b.ReportMetric(float64(cellBytes)/(1<<20), "cell-MiB/day")
			b.ReportMetric(float64(cellBytes)/float64(rows), "B/cell-row")
			b.ReportMetric(float64(rawBytes)/(1<<20), "raw-MiB/day")
		}
	})
	b.Run("hour", func(b *testing.B) {
		const perRound = 12 // 1M a day is 11.6 a second
		for range b.N {
			node := newShipNodeWith(b, pg.Database(b), "bench", metrics.Options{MarkChangedCells: true})
			pool := node.cluster.Pool()
			wal := func() (lsn int64) {
				if err := pool.QueryRow(ctxFor(b, time.Minute), `SELECT pg_current_wal_lsn() - '0/0'`).Scan(&lsn); err != nil {
					b.Fatal(err)
				}
				return lsn
			}
			node.recordRealistic(b, perRound, day, time.Second/perRound)
			node.drain(b) // schema, partitions and first rows outside the figure
			walBefore := wal()
			cellsWritten := 0
			for sec := 1; sec < 3600; sec++ {
				node.recordRealistic(b, perRound, day.Add(time.Duration(sec)*time.Second), time.Second/perRound)
				got, err := node.ship.ShipOnce(ctxFor(b, time.Minute))
				if err != nil {
					b.Fatal(err)
				}
				cellsWritten += got - perRound
			}
			walBytes := wal() - walBefore
			b.ReportMetric(float64(cellsWritten)*24, "cell-writes/day")
			b.ReportMetric(float64(walBytes)*24/(1<<20), "WAL-MiB/day")
			b.ReportMetric(float64(walBytes)/float64(cellsWritten+3599*perRound), "WAL-B/row-written")
		}
	})
}
