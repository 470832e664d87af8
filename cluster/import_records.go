package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// importRecordRound bounds the records of one transaction of the
// "records" step, as DefaultShipRecords bounds a shipping round.
const importRecordRound = DefaultShipRecords

// records is the "records" step: every raw block of the data file as a
// shipped batch of ImportOptions.InstanceID, the shipper's way (a batch
// row per block, the records of the blocks whose row was new, in one
// transaction per round), so a rerun, and a shipper of the same data
// file under the same instance id later, insert nothing twice. The
// data file's ship cursor is neither read nor moved. Records of a key or
// owner whose usage was erased in the cluster after they were recorded
// are left out and noted, as a shipper leaves them out; a dry run counts
// them the same way (dryRecords).
func (im *importer) records(ctx context.Context) (StepResult, error) {
	var res StepResult
	if im.withoutInstanceID("records", &res) {
		return res, nil
	}
	rd := metrics.NewReader(im.src)
	sizes, err := rd.BatchSizesAfter(ctx, 0, math.MaxInt)
	if errors.Is(err, store.ErrBucketMissing) {
		err = nil
	}
	if err != nil {
		return res, err
	}
	total := 0
	for _, s := range sizes {
		total += s.Records
	}
	im.progress("records: %d in the data file in %d blocks, imported as instance %q", total, len(sizes), im.opts.InstanceID)
	if total == 0 {
		return res, nil
	}
	if im.opts.DryRun {
		return im.dryRecords(ctx, rd, sizes, total)
	}
	partitions := newPartitionSet()
	var after uint64
	erasedTotal := 0
	for done := 0; done < total; {
		batches, err := rd.BatchesAfter(ctx, after, importRecordRound)
		if err != nil || len(batches) == 0 {
			return res, err
		}
		if err := partitions.ensure(ctx, im.c.pool, batches); err != nil {
			return res, err
		}
		var inserted, erased int
		err = pgx.BeginFunc(ctx, im.c.pool, func(tx pgx.Tx) error {
			filter, txErr := loadErasures(ctx, tx, metrics.ShipWork{Batches: batches})
			if txErr != nil {
				return txErr
			}
			inserted, _, txErr = insertBatches(ctx, tx, im.opts.InstanceID, batches, filter)
			erased, _ = filter.dropped()
			return txErr
		})
		if err != nil {
			return res, err
		}
		n := 0
		for _, b := range batches {
			n += len(b.Records)
		}
		res.Imported, res.Skipped, done = res.Imported+inserted, res.Skipped+n-inserted-erased, done+n
		erasedTotal += erased
		after = batches[len(batches)-1].Seq
		im.progress("records: %d/%d", done, total)
	}
	im.noteErased(&res, "records", "records", erasedTotal)
	im.progress("records: imported %d, skipped %d (shipped before)", res.Imported, res.Skipped)
	return res, nil
}

// noteErased notes in step's result that n of its things (records,
// cells) were left out because their key's or owner's usage was erased in
// the cluster after they were recorded, as a shipper leaves them out
// (ship_erasures.go), and says so.
func (im *importer) noteErased(res *StepResult, step, things string, n int) {
	if n == 0 {
		return
	}
	note := fmt.Sprintf("%d %s left out: their usage was erased in the cluster", n, things)
	res.Notes = append(res.Notes, note)
	im.progress("%s: %s", step, note)
}

// withoutInstanceID notes, for a step that needs
// ImportOptions.InstanceID, that it has none, and says so.
func (im *importer) withoutInstanceID(step string, res *StepResult) bool {
	if im.opts.InstanceID != "" {
		return false
	}
	res.Notes = append(res.Notes, "not imported: no instance id for the data file")
	im.progress("%s: %s", step, res.Notes[0])
	return true
}

// dryRecords is the "records" step of a dry run: it counts what records
// would write, reading the records of the blocks the cluster does not
// have yet through the same erasure filter, and writes nothing.
func (im *importer) dryRecords(ctx context.Context, rd *metrics.Reader, sizes []metrics.BatchSize, total int) (StepResult, error) {
	var res StepResult
	shipped, err := im.shippedBatches(ctx, sizes)
	if err != nil {
		return res, err
	}
	// Every erasure: the real import reads those at or after each round's
	// oldest record, and an older one drops nothing (erasedBy).
	erased, err := erasuresSince(ctx, im.c.pool, time.Time{})
	if err != nil {
		return res, err
	}
	var after uint64
	for done := 0; done < total; {
		batches, err := rd.BatchesAfter(ctx, after, importRecordRound)
		if err != nil || len(batches) == 0 {
			return res, err
		}
		for _, b := range batches {
			done += len(b.Records)
			if shipped[int64(b.Seq)] {
				res.Skipped += len(b.Records)
				continue
			}
			for j := range b.Records {
				if !erased.dropsRecord(&b.Records[j]) {
					res.Imported++
				}
			}
		}
		after = batches[len(batches)-1].Seq
	}
	n, _ := erased.dropped()
	im.noteErased(&res, "records", "records", n)
	im.progress("records: imported %d, skipped %d (shipped before)", res.Imported, res.Skipped)
	return res, nil
}

// shippedBatches is the set of the seqs of sizes' blocks the cluster has
// as batches of the import's instance id already.
func (im *importer) shippedBatches(ctx context.Context, sizes []metrics.BatchSize) (map[int64]bool, error) {
	seqs := make([]int64, len(sizes))
	for i, s := range sizes {
		seqs[i] = int64(s.Seq)
	}
	rows, err := im.c.pool.Query(ctx, `SELECT seq FROM apiwarden_shipped_batches WHERE instance_id = $1 AND seq = ANY($2)`,
		im.opts.InstanceID, seqs)
	if err != nil {
		return nil, err
	}
	there, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	have := make(map[int64]bool, len(there))
	for _, s := range there {
		have[s] = true
	}
	return have, nil
}
