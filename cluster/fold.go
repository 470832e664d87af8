package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/metrics"
)

// Fold defaults (FoldOptions fields left at zero).
const (
	DefaultFoldInterval = 5 * time.Minute
	DefaultFoldGrace    = 10 * time.Minute
	DefaultFoldPoll     = 5 * time.Second
)

// foldBatch bounds the cells one fold transaction merges, so no
// transaction holds many row locks (a shipper updating one waits) or
// builds much WAL.
const foldBatch = 2000

// foldLock is the advisory lock key every fold transaction takes, so two
// folds (a leader handing over, a test calling Apply) never fold the
// same cell at once.
const foldLock = 0x61770d_f01d

// FoldOptions configure the fold duty.
type FoldOptions struct {
	// Interval is the time between two passes while this instance leads
	// (default DefaultFoldInterval); a pass also runs as soon as it takes
	// the duty.
	Interval time.Duration
	// Grace is how long after an hour or a day ends its cells are left to
	// the instances' last rounds before they are folded (default
	// DefaultFoldGrace). A row updated later is still exact (the trigger
	// of cluster/migrations/013_cell_fold.up.sql), only read unfolded until
	// the next pass.
	Grace time.Duration
	// Poll is how often Run asks whether this instance leads (default
	// DefaultFoldPoll).
	Poll time.Duration
	// Now is the clock that says which intervals are closed; nil: time.Now.
	Now func() time.Time
}

// Fold merges the per-instance rows of each closed hour's and day's cells
// of apiwarden_cells into one row (instance_id '*'), so readers
// (source_cells.go) read one row a cell instead of one per instance; on
// the instance that leads its duty only. The state and why a late update
// stays exact are written in cluster/migrations/013_cell_fold.up.sql.
//
// Run and Stop (passDuty) follow internal/lifecycle; Apply may run
// beside Run (an advisory lock makes folds take turns); the counters are
// safe for concurrent use.
type Fold struct {
	passDuty
	c    *Cluster
	opts FoldOptions

	cells atomic.Uint64 // cells this process folded
}

// NewFold makes the fold duty of c, which Run performs while lead says
// this instance leads (lead may be nil when only Apply is called): a pass
// at once when it takes the duty, then every Interval.
func NewFold(c *Cluster, lead Leadership, opts FoldOptions) *Fold {
	if opts.Interval <= 0 {
		opts.Interval = DefaultFoldInterval
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultFoldGrace
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultFoldPoll
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &Fold{c: c, opts: opts}
	f.name, f.failed = "cluster fold", "folding cells in PostgreSQL failed; will retry"
	f.lead, f.poll, f.interval, f.log = lead, opts.Poll, opts.Interval, c.log.With("duty", "fold")
	f.pass = func(ctx context.Context) error {
		_, err := f.Apply(ctx)
		return err
	}
	return f
}

// FoldedCells is how many cells this process folded (a cell folded again
// after a late update counts again).
func (f *Fold) FoldedCells() uint64 { return f.cells.Load() }

// Apply folds, as of Now, every cell of a closed interval that has
// instance rows not yet folded, foldBatch cells a transaction, and
// returns how many cells it folded. It stops at the first error
// (wrapping keys.ErrUnavailable when PostgreSQL cannot be reached); what
// it committed before stays folded. Folding the same rows again changes
// nothing: a pass over folded cells folds none.
func (f *Fold) Apply(ctx context.Context) (int64, error) {
	if err := f.c.ensureReady(ctx); err != nil {
		return 0, unavailable(err)
	}
	cut := f.opts.Now().Add(-f.opts.Grace)
	var total int64
	for _, iv := range []metrics.Interval{metrics.Hourly, metrics.Daily} {
		// The last start of a closed interval: it ends at or before cut.
		last := iv.Truncate(cut).Add(-time.Hour)
		if iv == metrics.Daily {
			last = iv.Truncate(cut).AddDate(0, 0, -1)
		}
		for {
			n, err := f.foldBatch(ctx, iv, last)
			total += n
			f.cells.Add(uint64(n))
			if err != nil {
				return total, unavailable(fmt.Errorf("cluster: fold cells: %w", err))
			}
			if n < foldBatch {
				break
			}
		}
	}
	if total > 0 {
		f.log.Debug("folded cells", "cells", total)
	}
	return total, nil
}

// foldCellsSQL locks, for the first $3 cells of interval $1 starting at
// or before $2 that have instance rows not yet folded, those rows and the
// cell's '*' row, which it returns first within each cell.
const foldCellsSQL = `WITH todo AS (
		SELECT DISTINCT interval, start, dim, value FROM apiwarden_cells
		WHERE NOT folded AND instance_id <> '*' AND interval = $1 AND start <= $2
		ORDER BY interval, start, dim, value
		LIMIT $3)
	SELECT c.interval, c.dim, c.value, c.start, c.instance_id, c.cell
	FROM apiwarden_cells c JOIN todo USING (interval, dim, value, start)
	WHERE c.instance_id = '*' OR NOT c.folded
	ORDER BY c.interval, c.dim, c.value, c.start, c.instance_id <> '*'
	FOR UPDATE OF c`

// foldBatch folds up to foldBatch cells of interval iv starting at or
// before last in one transaction, and returns how many.
func (f *Fold) foldBatch(ctx context.Context, iv metrics.Interval, last time.Time) (int64, error) {
	ctx, cancel := f.c.deadline(ctx)
	defer cancel()
	var n int64
	err := pgx.BeginFunc(ctx, f.c.pool, func(tx pgx.Tx) error {
		n = 0
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(foldLock)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, foldCellsSQL, int16(iv), last, foldBatch)
		if err != nil {
			return err
		}
		merged, folded, err := mergeFoldRows(rows)
		if err != nil || merged.len() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, upsertMergedSQL, merged.intervals, merged.dims, merged.values, merged.starts, merged.counts, merged.cells); err != nil {
			return err
		}
		n = int64(merged.len())
		return folded.mark(ctx, tx)
	})
	return n, err
}

// mergeFoldRows reads foldCellsSQL's rows and returns the merge of each
// cell's rows, as the cell's '*' row, and the instance rows it merged.
func mergeFoldRows(rows pgx.Rows) (cellArrays, foldedRows, error) {
	defer rows.Close()
	var (
		merged        cellArrays
		folded        foldedRows
		cell, one     metrics.Cell
		id, prev      cellRowID
		have          bool
		interval, dim int16
		value, inst   string
		start         time.Time
		raw           []byte
	)
	appendMerged := func() {
		b, _ := cell.AppendBinary(nil)
		merged.add(prev.interval, prev.dim, prev.value, prev.start, cell.Count, b)
	}
	for rows.Next() {
		if err := rows.Scan(&interval, &dim, &value, &start, &inst, &raw); err != nil {
			return merged, folded, err
		}
		id = cellRowID{metrics.Interval(interval), metrics.Dimension(dim), value, start}
		if have && id != prev {
			appendMerged()
			cell.Reset()
		}
		prev, have = id, true
		if err := one.UnmarshalBinary(raw); err != nil {
			return merged, folded, fmt.Errorf("%w (cell %s %q %s %s of %s)", err, id.dim, value, id.interval, start.UTC().Format(time.RFC3339), inst)
		}
		cell.Merge(&one)
		if inst != "*" {
			folded.add(id, inst)
		}
	}
	if err := rows.Err(); err != nil {
		return merged, folded, err
	}
	if have {
		appendMerged()
	}
	return merged, folded, nil
}

// upsertMergedSQL writes the '*' rows of cells: unlike an instance's
// upsert (ship_cells.go) it always replaces, since the fold merged the old
// '*' row into the new one.
const upsertMergedSQL = `INSERT INTO apiwarden_cells (interval, dim, value, start, instance_id, count, cell)
	SELECT u.interval, u.dim, u.value, u.start, '*', u.count, u.cell
	FROM unnest($1::smallint[], $2::smallint[], $3::text[], $4::timestamptz[], $5::bigint[], $6::bytea[])
		AS u(interval, dim, value, start, count, cell)
	ON CONFLICT (interval, dim, value, start, instance_id)
	DO UPDATE SET count = EXCLUDED.count, cell = EXCLUDED.cell`

// cellRowID names one cell of the cluster.
type cellRowID struct {
	interval metrics.Interval
	dim      metrics.Dimension
	value    string
	start    time.Time
}

// foldedRows are the instance rows one fold transaction merged, one array
// per key column, to mark them folded in one statement.
type foldedRows struct {
	intervals, dims []int16
	values          []string
	starts          []time.Time
	instances       []string
}

func (r *foldedRows) add(id cellRowID, instance string) {
	r.intervals = append(r.intervals, int16(id.interval))
	r.dims = append(r.dims, int16(id.dim))
	r.values = append(r.values, id.value)
	r.starts = append(r.starts, id.start)
	r.instances = append(r.instances, instance)
}

func (r *foldedRows) mark(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE apiwarden_cells c SET folded = true
		FROM unnest($1::smallint[], $2::smallint[], $3::text[], $4::timestamptz[], $5::text[]) AS u(interval, dim, value, start, instance_id)
		WHERE c.interval = u.interval AND c.dim = u.dim AND c.value = u.value AND c.start = u.start AND c.instance_id = u.instance_id`,
		r.intervals, r.dims, r.values, r.starts, r.instances)
	return err
}
