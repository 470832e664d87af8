package cluster

import (
	"context"
	"fmt"
	"strconv"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/metrics"
)

// erasureQueue bounds the erasures announced but not yet applied here;
// beyond it a notification is logged and dropped (the shipper still keeps
// the erased data out of PostgreSQL).
const erasureQueue = 64

// ErasureFollower applies on this instance's data file the erasures other
// instances commit: Notify, the Listener's handler for ErasuresChannel,
// queues the erasure's id; Run reads its row from apiwarden_erasures and
// runs the same erasure through eraser (raw records, cells with rollups,
// free pages scrubbed), one at a time. Erasures this instance ran itself
// are passed: its own file was erased before the row was written.
//
// Run and Stop follow internal/lifecycle; Notify may be called from any
// goroutine and never blocks.
type ErasureFollower struct {
	c      *Cluster
	eraser *metrics.Eraser
	ids    chan int64
	life   lifecycle.State
}

// NewErasureFollower makes the follower of c's erasures, erasing through
// eraser (the one the admin API's erasures use, so they take turns).
func NewErasureFollower(c *Cluster, eraser *metrics.Eraser) *ErasureFollower {
	return &ErasureFollower{c: c, eraser: eraser, ids: make(chan int64, erasureQueue)}
}

// Notify queues the erasure whose id is payload; a payload that is not an
// id, or a full queue, is logged and dropped.
func (f *ErasureFollower) Notify(payload string) {
	id, err := strconv.ParseInt(payload, 10, 64)
	if err != nil {
		f.c.log.Warn("an erasure notification without an id", "payload", payload)
		return
	}
	select {
	case f.ids <- id:
	default:
		f.c.log.Warn("too many erasures waiting; this one is not applied to the local data file", "erasure", id)
	}
}

// Run applies queued erasures until ctx ends or Stop is called. A failed
// erasure is logged; it returns nil.
func (f *ErasureFollower) Run(ctx context.Context) error {
	return f.life.Run("cluster erasure follower", func(stop <-chan struct{}) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-stop:
				return nil
			case id := <-f.ids:
				if err := f.apply(ctx, id); err != nil && ctx.Err() == nil {
					f.c.log.Error("applying an erasure to the local data file failed", "erasure", id, "err", err)
				}
			}
		}
	})
}

// Stop ends Run and waits for it.
func (f *ErasureFollower) Stop() { f.life.Stop(nil) }

// apply runs erasure id on the local data file unless this instance ran it.
func (f *ErasureFollower) apply(ctx context.Context, id int64) error {
	req, origin, err := f.c.erasure(ctx, id)
	if err != nil || origin == f.c.opts.InstanceID {
		return err
	}
	res, err := f.eraser.Erase(ctx, req)
	if err != nil {
		return err
	}
	f.c.log.Info("usage data erased on another instance's request", "erasure", id, "from", origin,
		"key", req.KeyID, "owner", req.OwnerID, "raw_records", res.RawRecords, "rollup_cells", res.RollupCells)
	return nil
}

// erasure reads erasure id's request and the instance that ran it.
func (c *Cluster) erasure(ctx context.Context, id int64) (metrics.EraseRequest, string, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	var req metrics.EraseRequest
	var keyIDs []string
	var origin string
	err := c.pool.QueryRow(ctx, `SELECT key_ids, owner_id, rollups, requested_by, instance_id
		FROM apiwarden_erasures WHERE id = $1`, id).Scan(&keyIDs, &req.OwnerID, &req.Rollups, &req.RequestedBy, &origin)
	if err != nil {
		return req, "", fmt.Errorf("cluster: read erasure %d: %w", id, err)
	}
	if req.OwnerID == "" && len(keyIDs) == 1 {
		req.KeyID = keyIDs[0]
	} else {
		req.KeyIDs = keyIDs
	}
	return req, origin, nil
}
