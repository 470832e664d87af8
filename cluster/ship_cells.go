package cluster

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/metrics"
)

// cellArrays are rollup cells as one array per column of apiwarden_cells
// (cluster/migrations/008_cells.up.sql), for one statement over unnest:
// measured against CopyFrom into a temporary table and one INSERT …
// SELECT … ON CONFLICT in cluster/ship_cells_bench_test.go
// (docs/BENCHMARKS.md), and it needs no DDL in every round.
type cellArrays struct {
	intervals []int16
	dims      []int16
	values    []string
	starts    []time.Time
	counts    []int64
	cells     [][]byte
}

// newCellArrays takes the cells that have a value (a cell retention
// deleted has nothing to ship) and that erased (nil: none) does not drop.
func newCellArrays(cells []metrics.DirtyCell, erased *erasureFilter) cellArrays {
	var a cellArrays
	for i := range cells {
		if d := &cells[i]; d.Cell != nil && !erased.dropsCell(d) {
			a.add(d.Interval, d.Dimension, d.Value, d.Start, d.Count, d.Cell)
		}
	}
	return a
}

func (a *cellArrays) add(iv metrics.Interval, dim metrics.Dimension, value string, start time.Time, count uint64, cell []byte) {
	a.intervals = append(a.intervals, int16(iv))
	a.dims = append(a.dims, int16(dim))
	a.values = append(a.values, value)
	a.starts = append(a.starts, start)
	a.counts = append(a.counts, int64(count))
	a.cells = append(a.cells, cell)
}

func (a *cellArrays) len() int { return len(a.cells) }

// upsertCellsSQL writes instance $1's rows. A row is replaced only by a
// higher count: a cell's count in one data file only grows, so an older
// value (a round that read before another one wrote, an import of an
// older backup) never overwrites a newer one, and an equal one is not
// rewritten.
const upsertCellsSQL = `INSERT INTO apiwarden_cells AS c (interval, dim, value, start, instance_id, count, cell)
	SELECT u.interval, u.dim, u.value, u.start, $1, u.count, u.cell
	FROM unnest($2::smallint[], $3::smallint[], $4::text[], $5::timestamptz[], $6::bigint[], $7::bytea[])
		AS u(interval, dim, value, start, count, cell)
	ON CONFLICT (interval, dim, value, start, instance_id)
	DO UPDATE SET count = EXCLUDED.count, cell = EXCLUDED.cell WHERE c.count < EXCLUDED.count`

// upsertCells writes the cells as instance's rows and returns how many
// rows it inserted or replaced.
func upsertCells(ctx context.Context, tx pgx.Tx, instance string, a cellArrays) (int64, error) {
	if a.len() == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, upsertCellsSQL, instance, a.intervals, a.dims, a.values, a.starts, a.counts, a.cells)
	return tag.RowsAffected(), err
}

// countCellWrites counts the rows upsertCells would insert or replace,
// writing nothing.
func countCellWrites(ctx context.Context, pool retryPool, instance string, a cellArrays) (int64, error) {
	if a.len() == 0 {
		return 0, nil
	}
	var n int64
	err := pool.QueryRow(ctx, `SELECT count(*)
		FROM unnest($2::smallint[], $3::smallint[], $4::text[], $5::timestamptz[], $6::bigint[])
			AS u(interval, dim, value, start, count)
		LEFT JOIN apiwarden_cells c ON c.interval = u.interval AND c.dim = u.dim AND c.value = u.value
			AND c.start = u.start AND c.instance_id = $1
		WHERE c.count IS NULL OR c.count < u.count`, instance, a.intervals, a.dims, a.values, a.starts, a.counts).Scan(&n)
	return n, err
}
