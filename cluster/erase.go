package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/metrics"
)

// ErasuresChannel is the NOTIFY channel on which EraseUsage announces a
// committed erasure; the payload is its id in apiwarden_erasures.
const ErasuresChannel = "apiwarden_erasures"

// ErasedRows counts the rows EraseUsage deleted.
type ErasedRows struct {
	Records int64 // apiwarden_records, every instance's
	Cells   int64 // apiwarden_cells, every instance's
	// ID is the erasure's row in apiwarden_erasures.
	ID int64
}

// EraseUsage deletes from PostgreSQL the shipped raw records of req's key
// (key_id) or owner (owner_id), from every instance, and with
// req.Rollups the rollup cells of the key (dim key), or of the owner (dim
// owner) and of each key in cellKeys (dim key), in one transaction.
//
// Instances ship cells as the absolute values their data files hold, so
// a cell deleted here comes back with the next shipping round unless the
// instance's own cell is gone too: run it after metrics.Eraser has
// erased the local copy (app does). It returns the error of reaching
// PostgreSQL or of the statements, wrapped; nothing is deleted then.
func (c *Cluster) EraseUsage(ctx context.Context, req metrics.EraseRequest, cellKeys []string) (ErasedRows, error) {
	var out ErasedRows
	if err := c.ensureReady(ctx); err != nil {
		return out, err
	}
	column, subject := "key_id", req.KeyID
	if req.KeyID == "" {
		column, subject = "owner_id", req.OwnerID
	}
	if subject == "" {
		return out, fmt.Errorf("cluster: erase: %w: no key id or owner id", metrics.ErrBadQuery)
	}
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return out, fmt.Errorf("cluster: erase: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	tag, err := tx.Exec(ctx, `DELETE FROM apiwarden_records WHERE `+column+` = $1`, subject)
	if err != nil {
		return out, fmt.Errorf("cluster: erase records: %w", err)
	}
	out.Records = tag.RowsAffected()
	if req.Rollups {
		keysToo := cellKeys
		if req.KeyID != "" {
			keysToo = []string{req.KeyID}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM apiwarden_cells
			WHERE (dim = $1 AND value = ANY($2)) OR (dim = $3 AND value = $4)`,
			int16(metrics.DimKey), keysToo, int16(metrics.DimOwner), req.OwnerID)
		if err != nil {
			return out, fmt.Errorf("cluster: erase cells: %w", err)
		}
		out.Cells = tag.RowsAffected()
	}
	if out.ID, err = recordErasure(ctx, tx, c.opts.InstanceID, req, cellKeys); err != nil {
		return out, err
	}
	if err := tx.Commit(ctx); err != nil {
		return out, fmt.Errorf("cluster: erase: %w", err)
	}
	return out, nil
}

// recordErasure inserts req's row into apiwarden_erasures and notifies
// ErasuresChannel (delivered at the commit), and returns the row's id.
func recordErasure(ctx context.Context, tx pgx.Tx, instance string, req metrics.EraseRequest, cellKeys []string) (int64, error) {
	keyIDs := []string{req.KeyID}
	if req.KeyID == "" {
		keyIDs = append(slices.Clone(cellKeys), req.KeyIDs...)
		slices.Sort(keyIDs)
		keyIDs = slices.Compact(keyIDs)
	}
	// Followers read the erasures above the last id they applied
	// (erase_follow.go), so ids must become visible in id order: the lock
	// makes each erasure take its id and commit before the next one takes
	// its own. It conflicts with itself and with retention's deletes of
	// old rows, not with reads, and is held only from here to the commit.
	if _, err := tx.Exec(ctx, `LOCK TABLE apiwarden_erasures IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return 0, fmt.Errorf("cluster: erase: lock the erasures: %w", err)
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO apiwarden_erasures (key_ids, owner_id, rollups, requested_by, instance_id)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, keyIDs, req.OwnerID, req.Rollups, req.RequestedBy, instance).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("cluster: erase: record the erasure: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ErasuresChannel, strconv.FormatInt(id, 10)); err != nil {
		return 0, fmt.Errorf("cluster: erase: notify: %w", err)
	}
	return id, nil
}
