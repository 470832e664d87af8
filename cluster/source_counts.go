package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
)

var (
	_ analytics.ValueCounter = (*Source)(nil)
	_ analytics.TopCounter   = (*Source)(nil)
)

// cellParts is the SQL of a set of cell ranges of one dimension, for the
// counts PostgreSQL answers from apiwarden_cells_visible without reading
// a cell.
type cellParts struct {
	args   []any
	ranges []string // "interval = $i AND start >= $j AND start < $k", one a part
}

// newCellParts checks parts (queries of dim whose From and To are starts
// of their interval) and writes their conditions with parameters after
// the first reserved ones.
func newCellParts(dim metrics.Dimension, parts []metrics.CellQuery, reserved int) (cellParts, error) {
	p := cellParts{args: make([]any, reserved, reserved+3*len(parts))}
	for _, q := range parts {
		if err := checkCellQuery(q.Interval, dim); err != nil {
			return p, err
		}
		if q.Dimension != dim || q.To.IsZero() || !q.To.After(q.From) {
			return p, fmt.Errorf("%w: a part must be a range of dimension %v with an end after its start", metrics.ErrBadQuery, dim)
		}
		n := len(p.args)
		p.args = append(p.args, int16(q.Interval), q.Interval.Truncate(q.From), q.To)
		p.ranges = append(p.ranges, fmt.Sprintf("interval = $%d AND start >= $%d AND start < $%d", n+1, n+2, n+3))
	}
	return p, nil
}

// union selects cols of the visible rows of dim ($1) that match and in
// every part, one index range scan a part.
func (p *cellParts) union(cols, and string) string {
	sel := make([]string, len(p.ranges))
	for i, r := range p.ranges {
		sel[i] = `SELECT ` + cols + ` FROM apiwarden_cells WHERE ` + visibleCells + ` AND dim = $1 AND ` + r + and
	}
	return strings.Join(sel, " UNION ALL ")
}

// CountValues counts the distinct values of dim with a cell in parts, in
// PostgreSQL, from the index alone. It satisfies analytics.ValueCounter;
// errors as ScanCells.
func (s *Source) CountValues(ctx context.Context, dim metrics.Dimension, parts []metrics.CellQuery) (uint64, error) {
	p, err := newCellParts(dim, parts, 1)
	if err != nil || len(parts) == 0 {
		return 0, err
	}
	p.args[0] = int16(dim)
	qctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	var n int64
	// GROUP BY, not count(DISTINCT): a hash of the values rather than a
	// sort of every entry.
	sql := `SELECT count(*) FROM (SELECT value FROM (` + p.union("value", "") + `) v GROUP BY value) d`
	if err := s.pool.QueryRow(qctx, sql, append([]any{pgx.QueryExecModeExec}, p.args...)...).Scan(&n); err != nil {
		return 0, readError(ctx, err)
	}
	return uint64(n), nil
}

// TopByCount ranks the values of dim in parts by their summed count in
// PostgreSQL (from the index alone; ties by value in byte order, COLLATE
// "C") and reads and merges the cells of the top limit only. It
// satisfies analytics.TopCounter; errors as ScanCells.
func (s *Source) TopByCount(ctx context.Context, dim metrics.Dimension, parts []metrics.CellQuery, limit int,
	fn func(value string, c *metrics.Cell) error) error {
	p, err := newCellParts(dim, parts, 2)
	if err != nil || len(parts) == 0 || limit <= 0 {
		return err
	}
	p.args[0], p.args[1] = int16(dim), limit
	// LATERAL, a primary key range a part and value: a join would
	// rather read every value's cells of the range.
	sql := `WITH top AS (SELECT value, sum(count) AS n FROM (` + p.union("value, count", "") + `) v
			GROUP BY value ORDER BY n DESC, value COLLATE "C" LIMIT $2)
		SELECT top.value, c.start, c.cell FROM top CROSS JOIN LATERAL (` + p.union("start, cell", " AND value = top.value") + `) c
		ORDER BY top.n DESC, top.value COLLATE "C"`
	var (
		merged metrics.Cell
		value  string
		have   bool
	)
	err = s.eachCellRow(ctx, parts[0].Interval, dim, sql, p.args, func(v string, _ time.Time, c *metrics.Cell) error {
		if have && v != value {
			if err := fn(value, &merged); err != nil {
				return err
			}
			merged.Reset()
		}
		value, have = v, true
		merged.Merge(c)
		return nil
	})
	if err != nil || !have {
		return err
	}
	return fn(value, &merged)
}
