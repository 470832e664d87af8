package cluster

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/metrics"
)

// erasurePage is how many rows of apiwarden_erasures a catch-up reads at
// a time.
const erasurePage = 100

// LocalEraser erases this instance's data file and keeps its erasure
// mark: *metrics.Eraser.
type LocalEraser interface {
	Erase(ctx context.Context, req metrics.EraseRequest) (metrics.EraseResult, error)
	// LoadErasureMark returns the highest erasure id the file has
	// applied, setting it from latest first for a file without one.
	LoadErasureMark(latest int64) (int64, error)
	// SetErasureMark records id as applied; it never moves back.
	SetErasureMark(id int64) error
}

// ErasureFollower applies on this instance's data file the erasures other
// instances commit. It catches up: it reads, in id order and a page at a
// time, the rows of apiwarden_erasures above the data file's erasure mark
// and runs each through eraser (raw records, cells with rollups, free
// pages scrubbed), moving the mark after each. Erasures this instance ran
// itself are passed: its own file was erased before the row was written.
// A crash between an erasure and its mark runs it again, which finds
// nothing left to remove.
//
// It catches up when Run starts and after each Wake: Notify (the
// Listener's handler for ErasuresChannel) and the Listener's CatchUp hook
// (after each connect and each quiet resync) call it. Wakes coalesce, so
// a burst of notifications loses nothing: the one catch-up reads them all.
// A failed catch-up is logged and tried again at the next wake.
//
// Run and Stop follow internal/lifecycle; Notify and Wake may be called
// from any goroutine and never block.
type ErasureFollower struct {
	c      *Cluster
	eraser LocalEraser
	wake   chan struct{} // one pending catch-up
	life   lifecycle.State

	failures atomic.Uint64 // catch-ups that stopped on an error
	mark     atomic.Int64  // the data file's mark as last read or moved; -1 before
}

// NewErasureFollower makes the follower of c's erasures, erasing through
// eraser (the one the admin API's erasures use, so they take turns).
func NewErasureFollower(c *Cluster, eraser LocalEraser) *ErasureFollower {
	f := &ErasureFollower{c: c, eraser: eraser, wake: make(chan struct{}, 1)}
	f.mark.Store(-1)
	return f
}

// Failures counts the catch-ups since the process started that stopped
// on an error (PostgreSQL unreachable, or an erasure the data file could
// not take, which holds back every later one until it succeeds).
func (f *ErasureFollower) Failures() uint64 { return f.failures.Load() }

// Mark is the highest erasure id applied to the data file, as the
// follower last read or moved it; -1 before its first catch-up read it.
func (f *ErasureFollower) Mark() int64 { return f.mark.Load() }

// Notify asks for a catch-up; the payload (the erasure's id) is not
// needed, since the catch-up reads every erasure above the mark.
func (f *ErasureFollower) Notify(string) { f.Wake() }

// Wake asks for a catch-up, unless one is pending already.
func (f *ErasureFollower) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run catches up at once and after every wake until ctx ends or Stop is
// called. It returns nil; failures are logged.
func (f *ErasureFollower) Run(ctx context.Context) error {
	return f.life.Run("cluster erasure follower", func(stop <-chan struct{}) error {
		ctx, cancel := withStop(ctx, stop)
		defer cancel()
		mark := int64(-1) // not read yet
		for {
			var err error
			mark, err = f.catchUp(ctx, mark)
			f.mark.Store(mark)
			if err != nil && ctx.Err() == nil {
				f.failures.Add(1)
				f.c.log.Error("applying the cluster's erasures to the local data file failed; trying again at the next notification or resync",
					"applied_up_to", mark, "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-f.wake:
			}
		}
	})
}

// Stop ends Run and waits for it; an erasure in progress stops between
// transactions and runs again at the next start.
func (f *ErasureFollower) Stop() { f.life.Stop(nil) }

// catchUp applies every erasure above mark (-1: read the data file's) and
// returns the new mark.
func (f *ErasureFollower) catchUp(ctx context.Context, mark int64) (int64, error) {
	if mark < 0 {
		latest, err := f.c.latestErasure(ctx)
		if err != nil {
			return mark, err
		}
		if mark, err = f.eraser.LoadErasureMark(latest); err != nil {
			return -1, err
		}
	}
	for {
		page, err := f.c.erasuresAfter(ctx, mark, erasurePage)
		if err != nil {
			return mark, err
		}
		for _, e := range page {
			if err := f.apply(ctx, e); err != nil {
				return mark, fmt.Errorf("erasure %d: %w", e.id, err)
			}
			if err := f.eraser.SetErasureMark(e.id); err != nil {
				return mark, err
			}
			mark = e.id
		}
		if len(page) < erasurePage {
			return mark, nil
		}
	}
}

// apply runs erasure e on the local data file unless this instance ran it.
func (f *ErasureFollower) apply(ctx context.Context, e erasureRow) error {
	if e.origin == f.c.opts.InstanceID {
		return nil
	}
	res, err := f.eraser.Erase(ctx, e.req)
	if err != nil {
		return err
	}
	f.c.log.Info("usage data erased on another instance's request", "erasure", e.id, "from", e.origin,
		"key", e.req.KeyID, "owner", e.req.OwnerID, "raw_records", res.RawRecords, "rollup_cells", res.RollupCells)
	return nil
}

// erasureRow is one row of apiwarden_erasures: its id, its request and
// the instance that ran it.
type erasureRow struct {
	id     int64
	req    metrics.EraseRequest
	origin string
}

// latestErasure is the highest erasure id on record, 0 when none is.
func (c *Cluster) latestErasure(ctx context.Context) (int64, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	var id int64
	if err := c.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM apiwarden_erasures`).Scan(&id); err != nil {
		return 0, fmt.Errorf("cluster: read the latest erasure: %w", err)
	}
	return id, nil
}

// erasuresAfter reads up to limit erasures with an id above after, in id
// order (EraseUsage commits them in that order: see recordErasure).
func (c *Cluster) erasuresAfter(ctx context.Context, after int64, limit int) ([]erasureRow, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT id, key_ids, owner_id, rollups, requested_by, instance_id
		FROM apiwarden_erasures WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("cluster: read erasures: %w", err)
	}
	defer rows.Close()
	var out []erasureRow
	for rows.Next() {
		var e erasureRow
		var keyIDs []string
		if err := rows.Scan(&e.id, &keyIDs, &e.req.OwnerID, &e.req.Rollups, &e.req.RequestedBy, &e.origin); err != nil {
			return nil, fmt.Errorf("cluster: read erasures: %w", err)
		}
		if e.req.OwnerID == "" && len(keyIDs) == 1 {
			e.req.KeyID = keyIDs[0]
		} else {
			e.req.KeyIDs = keyIDs
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cluster: read erasures: %w", err)
	}
	return out, nil
}
