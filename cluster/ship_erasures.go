package cluster

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/metrics"
)

// erasureFilter holds the erasures (cluster/migrations/012_erasures.up.sql)
// that reach a shipping round's work: for each erased key and owner the
// latest erased_at, for records and, where the erasure took the rollups,
// for cells. A record or cell from at or before that time was erased on
// another instance while it waited in this one's data file, and must not
// ship.
type erasureFilter struct {
	keys, owners         map[string]time.Time // records
	cellKeys, cellOwners map[string]time.Time // cells (rollups=true)
	records, cells       int                  // what the round dropped
}

// loadErasures reads, in the round's transaction tx, the erasures at or
// after the oldest record or cell of work: older ones cannot reach it. It
// returns nil when there is none.
func loadErasures(ctx context.Context, tx pgx.Tx, work metrics.ShipWork) (*erasureFilter, error) {
	oldest, ok := oldestShipped(work)
	if !ok {
		return nil, nil
	}
	return erasuresSince(ctx, tx, oldest)
}

// querier is what erasuresSince reads through: a transaction or the pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// erasuresSince reads the erasures at or after since (all of them for the
// zero time) into a filter; nil when there is none.
func erasuresSince(ctx context.Context, q querier, since time.Time) (*erasureFilter, error) {
	rows, err := q.Query(ctx, `SELECT key_ids, owner_id, rollups, erased_at
		FROM apiwarden_erasures WHERE erased_at >= $1`, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var f *erasureFilter
	for rows.Next() {
		var keyIDs []string
		var owner string
		var rollups bool
		var at time.Time
		if err := rows.Scan(&keyIDs, &owner, &rollups, &at); err != nil {
			return nil, err
		}
		if f == nil {
			f = &erasureFilter{keys: map[string]time.Time{}, owners: map[string]time.Time{},
				cellKeys: map[string]time.Time{}, cellOwners: map[string]time.Time{}}
		}
		f.add(keyIDs, owner, rollups, at)
	}
	return f, rows.Err()
}

func (f *erasureFilter) add(keyIDs []string, owner string, rollups bool, at time.Time) {
	later := func(m map[string]time.Time, v string) {
		if v != "" && at.After(m[v]) {
			m[v] = at
		}
	}
	for _, k := range keyIDs {
		later(f.keys, k)
		if rollups {
			later(f.cellKeys, k)
		}
	}
	later(f.owners, owner)
	if rollups {
		later(f.cellOwners, owner)
	}
}

// dropsRecord reports whether rec was erased, and counts it.
func (f *erasureFilter) dropsRecord(rec *metrics.Record) bool {
	if f == nil {
		return false
	}
	if erasedBy(f.keys, rec.KeyID, rec.Time) || erasedBy(f.owners, rec.OwnerID, rec.Time) {
		f.records++
		return true
	}
	return false
}

// dropsCell reports whether c was erased, and counts it: a cell of dim
// key or owner whose start is at or before an erasure with rollups.
func (f *erasureFilter) dropsCell(c *metrics.DirtyCell) bool {
	return f.dropsCellOf(c.Dimension, c.Value, c.Start)
}

// dropsCellOf is dropsCell for the cell of dim and value that starts at
// start.
func (f *erasureFilter) dropsCellOf(dim metrics.Dimension, value string, start time.Time) bool {
	if f == nil {
		return false
	}
	var erased bool
	switch dim {
	case metrics.DimKey:
		erased = erasedBy(f.cellKeys, value, start)
	case metrics.DimOwner:
		erased = erasedBy(f.cellOwners, value, start)
	}
	if erased {
		f.cells++
	}
	return erased
}

// dropped is how many records and cells the filter dropped; 0 and 0 for
// a nil filter.
func (f *erasureFilter) dropped() (records, cells int) {
	if f == nil {
		return 0, 0
	}
	return f.records, f.cells
}

// erasedBy reports whether m holds an erasure of v at or after t.
func erasedBy(m map[string]time.Time, v string, t time.Time) bool {
	at, ok := m[v]
	return ok && !t.After(at)
}

// oldestShipped is the time of the oldest record or cell start in work;
// false when work holds neither.
func oldestShipped(work metrics.ShipWork) (time.Time, bool) {
	var oldest time.Time
	found := false
	note := func(t time.Time) {
		if !found || t.Before(oldest) {
			oldest, found = t, true
		}
	}
	for i := range work.Batches {
		for j := range work.Batches[i].Records {
			note(work.Batches[i].Records[j].Time)
		}
	}
	for i := range work.Cells {
		note(work.Cells[i].Start)
	}
	return oldest, found
}
