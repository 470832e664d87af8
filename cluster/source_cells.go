package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// cellOrder is the ORDER BY that visits apiwarden_cells' rows as the bbolt
// reader visits its cells: by value in bbolt's key order (the value's
// length as a uvarint, then its bytes; the two length terms are that
// uvarint's bytes for values under 16 KiB, and dimension values are at
// most 256 bytes), then by time; the instances' rows of one cell follow
// one another.
const cellOrder = `ORDER BY CASE WHEN octet_length(value) < 128 THEN octet_length(value) ELSE 128 + octet_length(value) % 128 END,
	octet_length(value) / 128, value COLLATE "C", start, instance_id`

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
	sql.WriteString(`SELECT value, start, cell FROM apiwarden_cells WHERE interval = $1 AND dim = $2 AND start >= $3`)
	args := []any{int16(q.Interval), int16(q.Dimension), q.Interval.Truncate(q.From)}
	if !q.To.IsZero() {
		args = append(args, q.To)
		fmt.Fprintf(&sql, " AND start < $%d", len(args))
	}
	if !q.AllValues {
		args = append(args, q.Value)
		fmt.Fprintf(&sql, " AND value = $%d", len(args))
	}
	sql.WriteString(" ")
	sql.WriteString(cellOrder)
	return s.scanCells(ctx, q.Interval, q.Dimension, sql.String(), args, fn)
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
	sql := `SELECT value, start, cell FROM apiwarden_cells WHERE interval = $1 AND dim = $2 AND start = ANY($3) ` + cellOrder
	return s.scanCells(ctx, interval, dim, sql, []any{int16(interval), int16(dim), starts}, fn)
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

// scanCells runs sql, whose rows are (value, start, cell) in cellOrder,
// and calls fn once per (value, start) with the merge of its rows.
func (s *Source) scanCells(ctx context.Context, interval metrics.Interval, dim metrics.Dimension, sql string, args []any,
	fn func(value string, start time.Time, c *metrics.Cell) error) error {
	qctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	rows, err := s.c.pool.Query(qctx, sql, args...)
	if err != nil {
		return readError(ctx, err)
	}
	defer rows.Close()
	var (
		merged, row metrics.Cell
		value       string
		start       time.Time
		have        bool
		rowValue    string
		rowStart    time.Time
		raw         []byte
	)
	flush := func() error {
		if !have {
			return nil
		}
		have = false
		return fn(value, start, &merged)
	}
	for rows.Next() {
		if err := rows.Scan(&rowValue, &rowStart, &raw); err != nil {
			return readError(ctx, err)
		}
		if have && (rowValue != value || !rowStart.Equal(start)) {
			if err := flush(); err != nil {
				return err
			}
		}
		if err := row.UnmarshalBinary(raw); err != nil {
			return fmt.Errorf("%w (cell %s %q %s %s)", err, dim, rowValue, interval, rowStart.UTC().Format(time.RFC3339))
		}
		if !have {
			merged.Reset()
			value, start, have = rowValue, rowStart.UTC(), true
		}
		merged.Merge(&row)
	}
	if err := rows.Err(); err != nil {
		return readError(ctx, err)
	}
	if err := flush(); err != nil {
		return err
	}
	return ctx.Err()
}
