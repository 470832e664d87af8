package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// importCellRound bounds the cells of one statement of the "rollups"
// step.
const importCellRound = 5000

// rollups is the "rollups" step: every rollup cell of the data file,
// hourly and daily, with its absolute value as a row of
// ImportOptions.InstanceID in apiwarden_cells, as the shipper writes
// them: a rerun rewrites nothing (a row is only replaced by a higher
// count), and a shipper of the same data file later replaces the rows
// as its cells grow, never adding to them. Key and owner cells an erasure
// with rollups covers are left out and noted, as a shipper leaves them
// out.
func (im *importer) rollups(ctx context.Context) (StepResult, error) {
	var res StepResult
	if im.withoutInstanceID("rollups", &res) {
		return res, nil
	}
	// Every erasure: a data file may hold cells of any age.
	erased, err := erasuresSince(ctx, im.c.pool, time.Time{})
	if err != nil {
		return res, err
	}
	rd := metrics.NewReader(im.src)
	var batch cellArrays
	total := 0
	flush := func() error {
		written, err := im.writeCells(ctx, batch)
		res.Imported += int(written)
		res.Skipped += batch.len() - int(written)
		total += batch.len()
		batch = cellArrays{}
		return err
	}
	for _, iv := range []metrics.Interval{metrics.Hourly, metrics.Daily} {
		for _, dim := range metrics.Dimensions {
			err := rd.ScanCells(ctx, metrics.CellQuery{Interval: iv, Dimension: dim, AllValues: true},
				func(value string, start time.Time, c *metrics.Cell) error {
					if erased.dropsCellOf(dim, value, start) {
						return nil
					}
					enc, _ := c.AppendBinary(nil)
					batch.add(iv, dim, value, start, c.Count, enc)
					if batch.len() < importCellRound {
						return nil
					}
					if err := flush(); err != nil {
						return err
					}
					im.progress("rollups: %d cells so far", total)
					return nil
				})
			if errors.Is(err, store.ErrBucketMissing) {
				continue
			}
			if err != nil {
				return res, err
			}
		}
	}
	if batch.len() > 0 {
		if err := flush(); err != nil {
			return res, err
		}
	}
	_, dropped := erased.dropped()
	im.noteErased(&res, "rollups", "cells", dropped)
	im.progress("rollups: %d cells in the data file, as instance %q: imported %d, skipped %d (the same or newer in the cluster)",
		total+dropped, im.opts.InstanceID, res.Imported, res.Skipped)
	return res, nil
}

// writeCells upserts the cells as rows of the import's instance id, or
// in a dry run counts the rows it would write; either way it returns
// that count.
func (im *importer) writeCells(ctx context.Context, a cellArrays) (int64, error) {
	if im.opts.DryRun {
		return countCellWrites(ctx, im.c.pool, im.opts.InstanceID, a)
	}
	var written int64
	err := pgx.BeginFunc(ctx, im.c.pool, func(tx pgx.Tx) error {
		var err error
		written, err = upsertCells(ctx, tx, im.opts.InstanceID, a)
		return err
	})
	return written, err
}
