package app

import (
	"context"
	"fmt"

	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/metrics"
)

// usageEraser erases a key's or owner's usage data from this instance's
// data file and, in cluster mode, from PostgreSQL: the local copy first,
// because a shipper would otherwise send the cells (absolute values)
// back. Other instances erase their own data files when PostgreSQL
// notifies them (cluster.ErasureFollower); see docs/privacy.md.
type usageEraser struct {
	a      *App
	eraser *metrics.Eraser
}

var _ admin.UsageEraser = usageEraser{}

// EraseUsage implements admin.UsageEraser.
func (u usageEraser) EraseUsage(ctx context.Context, req metrics.EraseRequest) (admin.Erasure, error) {
	var out admin.Erasure
	local, err := u.eraser.Erase(ctx, req)
	out.EraseResult = local
	if err != nil {
		return out, err
	}
	if u.a.cluster == nil {
		return out, nil
	}
	rows, err := u.a.cluster.EraseUsage(ctx, req, local.KeyIDs)
	out.ClusterRecords, out.ClusterCells = rows.Records, rows.Cells
	if err != nil {
		return out, fmt.Errorf("erased here, not yet in PostgreSQL (retry): %w", err)
	}
	return out, nil
}
