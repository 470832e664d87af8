package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/metrics"
)

// visibleCells selects the rows a reader merges: a cell's merged row
// ('*') and its instance rows not folded into it, which together merge to
// every instance's row (cluster/migrations/013_cell_fold.up.sql). Written
// as the predicate of the index apiwarden_cells_visible, so the planner
// can use it.
const visibleCells = `(instance_id = '*' OR NOT folded)`

// ScanCells calls fn for every cell q selects, merged over the instances
// (metrics.Cell.Merge of each instance's row of one interval, dimension,
// value and start), in the bbolt reader's order: value by value in its
// storage order, by time within a value. Like metrics.Reader.ScanCells it
// selects the cells whose interval overlaps [q.From, q.To), reuses c
// between calls, and returns metrics.ErrBadQuery for an invalid query,
// the first error fn returns, metrics.ErrCorruptCell, or an error
// wrapping keys.ErrUnavailable when PostgreSQL cannot answer.
func (s *Source) ScanCells(ctx context.Context, q metrics.CellQuery, fn func(value string, start time.Time, c *metrics.Cell) error) error {
	if err := checkCellQuery(q.Interval, q.Dimension); err != nil {
		return err
	}
	if !q.To.IsZero() && !q.To.After(q.From) {
		return fmt.Errorf("%w: to (%s) must be after from (%s)", metrics.ErrBadQuery, q.To, q.From)
	}
	var sql strings.Builder
	sql.WriteString(`SELECT value, start, cell FROM apiwarden_cells WHERE ` + visibleCells + ` AND interval = $1 AND dim = $2 AND start >= $3`)
	args := []any{int16(q.Interval), int16(q.Dimension), q.Interval.Truncate(q.From)}
	if !q.To.IsZero() {
		args = append(args, q.To)
		fmt.Fprintf(&sql, " AND start < $%d", len(args))
	}
	if q.AllValues {
		return s.scanSorted(ctx, q.Interval, q.Dimension, sql.String(), args, fn)
	}
	// One value: the primary key gives its rows in time order.
	args = append(args, q.Value)
	fmt.Fprintf(&sql, " AND value = $%d ORDER BY start", len(args))
	return s.scanInOrder(ctx, q.Interval, q.Dimension, sql.String(), args, fn)
}

// ScanCellsAt calls fn for every cell of every value of dim whose
// interval starts at one of at (ascending intervals without repeats),
// merged over the instances, value by value and by time within a value,
// like metrics.Reader.ScanCellsAt. Errors as ScanCells.
func (s *Source) ScanCellsAt(ctx context.Context, interval metrics.Interval, dim metrics.Dimension, at []time.Time, fn func(value string, start time.Time, c *metrics.Cell) error) error {
	if err := checkCellQuery(interval, dim); err != nil {
		return err
	}
	starts := make([]time.Time, 0, len(at))
	for _, t := range at {
		st := interval.Truncate(t)
		if len(starts) > 0 && !st.After(starts[len(starts)-1]) {
			return fmt.Errorf("%w: times must be ascending intervals without repeats, %s is not after the one before", metrics.ErrBadQuery, t)
		}
		starts = append(starts, st)
	}
	if len(starts) == 0 {
		return nil
	}
	sql := `SELECT value, start, cell FROM apiwarden_cells WHERE ` + visibleCells + ` AND interval = $1 AND dim = $2 AND start = ANY($3)`
	return s.scanSorted(ctx, interval, dim, sql, []any{int16(interval), int16(dim), starts}, fn)
}

func checkCellQuery(interval metrics.Interval, dim metrics.Dimension) error {
	if interval != metrics.Hourly && interval != metrics.Daily {
		return fmt.Errorf("%w: interval %v", metrics.ErrBadQuery, interval)
	}
	if !slices.Contains(metrics.Dimensions, dim) {
		return fmt.Errorf("%w: dimension %v", metrics.ErrBadQuery, dim)
	}
	return nil
}

// scanInOrder runs sql, whose rows are (value, start, cell) of one value
// in time order, and calls fn once per start with the merge of its rows.
func (s *Source) scanInOrder(ctx context.Context, interval metrics.Interval, dim metrics.Dimension, sql string, args []any,
	fn func(value string, start time.Time, c *metrics.Cell) error) error {
	var (
		merged metrics.Cell
		value  string
		start  time.Time
		have   bool
	)
	err := s.eachCellRow(ctx, interval, dim, sql, args, func(v string, st time.Time, c *metrics.Cell) error {
		if have && !st.Equal(start) {
			if err := fn(value, start, &merged); err != nil {
				return err
			}
			have = false
		}
		if !have {
			merged.Reset()
			value, start, have = v, st, true
		}
		merged.Merge(c)
		return nil
	})
	if err != nil || !have {
		return err
	}
	return fn(value, start, &merged)
}

// cellID names one cell of the cluster: a value of a dimension at the
// start of an interval.
type cellID struct {
	value string
	start time.Time
}

// scanSorted runs sql, whose rows are (value, start, cell) in any order,
// merges the rows of each (value, start) and calls fn for each in the
// bbolt reader's order: by value in its key order (the length as a
// uvarint, then the bytes), then by time. Sorting here rather than in
// PostgreSQL: a sort there carries each row's cell bytes and measured
// several times slower than decoding and merging them.
func (s *Source) scanSorted(ctx context.Context, interval metrics.Interval, dim metrics.Dimension, sql string, args []any,
	fn func(value string, start time.Time, c *metrics.Cell) error) error {
	cells := make(map[cellID]*metrics.Cell)
	err := s.eachCellRow(ctx, interval, dim, sql, args, func(v string, st time.Time, c *metrics.Cell) error {
		id := cellID{v, st}
		merged := cells[id]
		if merged == nil {
			merged = new(metrics.Cell)
			cells[id] = merged
		}
		merged.Merge(c)
		return nil
	})
	if err != nil {
		return err
	}
	ids := make([]cellID, 0, len(cells))
	for id := range cells {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b cellID) int {
		if c := compareValues(a.value, b.value); c != 0 {
			return c
		}
		return a.start.Compare(b.start)
	})
	for _, id := range ids {
		if err := fn(id.value, id.start, cells[id]); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// compareValues orders dimension values as bbolt's cell keys do: by the
// uvarint of their length, then by their bytes.
func compareValues(a, b string) int {
	if len(a) != len(b) {
		var la, lb [binary.MaxVarintLen64]byte
		return bytes.Compare(la[:binary.PutUvarint(la[:], uint64(len(a)))], lb[:binary.PutUvarint(lb[:], uint64(len(b)))])
	}
	return strings.Compare(a, b)
}

// eachCellRow runs sql and calls fn with each row's value, start (UTC)
// and decoded cell, which fn must not keep.
func (s *Source) eachCellRow(ctx context.Context, interval metrics.Interval, dim metrics.Dimension, sql string, args []any,
	fn func(value string, start time.Time, c *metrics.Cell) error) error {
	qctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	// A plan for these values, not the pool's generic one: with the range
	// a parameter, a generic plan may walk a dimension's whole primary
	// key instead of the range index.
	rows, err := s.pool.Query(qctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return readError(ctx, err)
	}
	defer rows.Close()
	var (
		cell  metrics.Cell
		value string
		start time.Time
		raw   []byte
	)
	for rows.Next() {
		if err := rows.Scan(&value, &start, &raw); err != nil {
			return readError(ctx, err)
		}
		if err := cell.UnmarshalBinary(raw); err != nil {
			return fmt.Errorf("%w (cell %s %q %s %s)", err, dim, value, interval, start.UTC().Format(time.RFC3339))
		}
		if err := fn(value, start.UTC(), &cell); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return readError(ctx, err)
	}
	return nil
}
