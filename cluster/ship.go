package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/metrics"
)

// Shipping defaults (ShipperOptions fields left at zero).
const (
	DefaultShipInterval = time.Second
	DefaultShipRecords  = 50000
	DefaultShipCells    = 10000

	DefaultShipFinalTimeout = 5 * time.Second

	// DefaultSpoolMaxRecords bounds the unshipped records of a data file:
	// about 420 MB of raw blocks at 42 bytes a record (docs/BENCHMARKS.md).
	DefaultSpoolMaxRecords = 10_000_000
)

// ShipperOptions configure a Shipper.
type ShipperOptions struct {
	// Interval is the time between shipping rounds once the backlog is
	// empty (default DefaultShipInterval); with a backlog the shipper
	// ships round after round until it is empty.
	Interval time.Duration
	// MaxRecords bounds the records of one PostgreSQL transaction
	// (default DefaultShipRecords); a raw block is never split.
	MaxRecords int
	// MaxCells bounds the rollup cells of one transaction (default
	// DefaultShipCells).
	MaxCells int
	// FinalTimeout bounds the rounds Stop lets Run ship before it returns,
	// so the last flush of an instance that goes away for good reaches
	// PostgreSQL (default DefaultShipFinalTimeout).
	FinalTimeout time.Duration
	// SpoolMaxRecords bounds the records waiting to ship (default
	// DefaultSpoolMaxRecords): each round first deletes the oldest
	// unshipped raw blocks beyond it. A round starts at most Interval
	// after the last one ended, also while PostgreSQL is down, and a
	// round against a PostgreSQL that does not answer ends at the
	// Cluster's Timeout; so the spool passes the bound by at most what
	// the Recorder flushes during one round and one Interval (the
	// request rate times Timeout plus Interval), never by a whole outage.
	SpoolMaxRecords int
}

// Shipper copies the raw request records of this instance's data file to
// apiwarden_records, each exactly once, and its rollup cells to
// apiwarden_cells.
//
// A round reads the raw blocks after the ship cursor (metrics.Reader,
// BatchesAfter), inserts one apiwarden_shipped_batches row per block and
// the records of every block whose row was new in one transaction, moves
// the cursor in bbolt, and then deletes the blocks up to the cursor from
// bbolt. A crash between the commit and the cursor update makes the next
// round find the batch rows there and skip their records; a failed commit
// leaves nothing. The unshipped blocks are the spool: they stay in bbolt
// and survive restarts; each round first deletes the oldest of them
// beyond SpoolMaxRecords (counted and logged), and raw retention drops a
// day that was not shipped in time like any other. A block that does not
// decode is logged, counted and passed. Records kept out of the raw
// blocks by sampling are not shipped.
//
// In the same transaction a round upserts this instance's rows of
// apiwarden_cells with the absolute values of the cells changed since
// they last shipped (metrics/dirty.go; the Recorder must run with
// metrics.Options.MarkChangedCells) and, after the commit, clears them
// in the data file unless a flush changed them meanwhile. Shipping a
// cell's absolute value twice writes the same row twice, so a crash
// before the clear doubles nothing, and a row is only ever replaced by
// one with a higher count, so a round that read an older value than one
// already written (two rounds at once) changes nothing. Cells are exact
// whatever the sampling; a round runs for changed cells alone too.
//
// Run and Stop follow internal/lifecycle; ShipOnce may be called while
// Run runs: one Shipper's rounds take turns.
type Shipper struct {
	c    *Cluster
	rd   *metrics.Reader
	opts ShipperOptions
	log  *slog.Logger
	life lifecycle.State

	partitions partitionSet
	cellsFrom  cellResume
	round      sync.Mutex    // one round at a time: a drop must not pick blocks a round ships
	shipped    atomic.Uint64 // records this process inserted
	failures   atomic.Uint64 // rounds that failed
	dropped    atomic.Uint64 // unshipped records this process deleted over the bound
	corrupt    atomic.Uint64 // blocks this process passed because they do not decode
	// erasedDropped counts the records this process dropped because
	// their key or owner was erased while they waited.
	erasedDropped atomic.Uint64
	// afterCommit runs between the commit and the cursor update; tests
	// make it fail to stand for a crash at that point.
	afterCommit func() error
}

// NewShipper makes the shipper of this instance (Options.InstanceID of c)
// reading raw blocks through rd.
func NewShipper(c *Cluster, rd *metrics.Reader, opts ShipperOptions) (*Shipper, error) {
	if c.opts.InstanceID == "" {
		return nil, errors.New("cluster: shipping records needs an instance id")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultShipInterval
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = DefaultShipRecords
	}
	if opts.MaxCells <= 0 {
		opts.MaxCells = DefaultShipCells
	}
	if opts.FinalTimeout <= 0 {
		opts.FinalTimeout = DefaultShipFinalTimeout
	}
	if opts.SpoolMaxRecords <= 0 {
		opts.SpoolMaxRecords = DefaultSpoolMaxRecords
	}
	return &Shipper{c: c, rd: rd, opts: opts, log: c.log, partitions: newPartitionSet()}, nil
}

// ShippedRecords is how many records this process inserted into
// apiwarden_records.
func (s *Shipper) ShippedRecords() uint64 { return s.shipped.Load() }

// ShipFailures is how many of this process's rounds failed (PostgreSQL
// down, …).
func (s *Shipper) ShipFailures() uint64 { return s.failures.Load() }

// DroppedRecords is how many unshipped records this process deleted
// because the spool was over SpoolMaxRecords.
func (s *Shipper) DroppedRecords() uint64 { return s.dropped.Load() }

// CorruptBlocks is how many raw blocks this process passed without
// shipping them because they do not decode.
func (s *Shipper) CorruptBlocks() uint64 { return s.corrupt.Load() }

// ErasedRecords is how many records this process dropped instead of
// shipping them, because their key or owner was erased (on any instance)
// while they waited in the data file.
func (s *Shipper) ErasedRecords() uint64 { return s.erasedDropped.Load() }

// Backlog reads what is waiting to ship from the data file: the raw
// records and the changed cells.
func (s *Shipper) Backlog() (metrics.Backlog, error) { return s.rd.ShipBacklog() }

// Run ships until ctx ends or Stop is called: rounds back to back while
// there is a backlog, one every Interval otherwise, and after a failure
// (logged at the 1st, 2nd, 4th … in a row) the next try an Interval later.
// Every round also reports the backlog in this instance's row of
// apiwarden_instances, so a long drain shows its progress. After Stop it
// ships what it can within FinalTimeout (stop the Recorder first, so its
// last flush is among it); what is left then ships after the next start.
func (s *Shipper) Run(ctx context.Context) error {
	return s.life.Run("cluster shipper", func(stop <-chan struct{}) error {
		ticker := time.NewTicker(s.opts.Interval)
		defer ticker.Stop()
		again := make(chan time.Time)
		close(again) // ready at once: the next round right away
		streak := 0
		for {
			n, err := s.ShipOnce(ctx)
			streak = s.noteRound(ctx, err, streak)
			next := ticker.C
			if err == nil && n > 0 {
				next = again // more may be waiting
			}
			s.reportBacklog(ctx)
			select {
			case <-ctx.Done():
				return nil
			case <-stop:
				s.final(ctx)
				return nil
			case <-next:
			}
		}
	})
}

// noteRound counts and logs a failed round (at the 1st, 2nd, 4th … in a
// row) and the recovery after failures; it returns the failures in a row.
func (s *Shipper) noteRound(ctx context.Context, err error, streak int) int {
	switch {
	case err != nil && ctx.Err() == nil:
		s.failures.Add(1)
		streak++
		if streak&(streak-1) == 0 {
			s.log.Warn("shipping records to PostgreSQL failed; they wait in the data file", "failures_in_a_row", streak, "err", err)
		}
	case err == nil && streak > 0:
		s.log.Info("shipping records to PostgreSQL recovered", "after_failures", streak)
		streak = 0
	}
	return streak
}

// final ships rounds until the backlog is empty, a round fails or
// FinalTimeout has passed, and reports the backlog left.
func (s *Shipper) final(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.FinalTimeout)
	defer cancel()
	for {
		n, err := s.ShipOnce(ctx)
		if err != nil {
			s.log.Warn("records left to ship after the restart", "err", err)
			break
		}
		if n == 0 {
			break
		}
	}
	s.reportBacklog(ctx)
}

// Stop ends Run and waits for it.
func (s *Shipper) Stop() { s.life.Stop(nil) }

// ShipOnce runs one round: it deletes the oldest unshipped blocks beyond
// SpoolMaxRecords, ships the next batches after the cursor (up to
// MaxRecords) and the next changed cells (up to MaxCells), moves the
// cursor past the batches, clears the cells and deletes the batches from
// the data file. It returns how many records and cells it found, counting
// a block that does not decode as one (0: nothing was waiting). Records
// of batches some earlier try had committed are not inserted again.
// Errors wrap keys.ErrUnavailable when PostgreSQL cannot be reached; a
// failure to delete shipped blocks is only logged, since the next round
// deletes them.
func (s *Shipper) ShipOnce(ctx context.Context) (int, error) {
	s.round.Lock()
	defer s.round.Unlock()
	s.boundSpool(ctx)
	after, err := s.rd.ShipCursor()
	if err != nil {
		return 0, err
	}
	work, err := s.rd.ShipWork(ctx, metrics.ShipQuery{After: after, MaxRecords: s.opts.MaxRecords,
		MaxCells: s.opts.MaxCells, CellsFrom: s.cellsFrom.get()})
	if err != nil || len(work.Batches)+len(work.Cells) == 0 {
		return 0, err
	}
	read := work.Batches
	var corrupt []metrics.Batch
	work.Batches, corrupt = splitCorrupt(read)
	if len(work.Batches)+len(work.Cells) > 0 {
		if err := s.commit(ctx, work); err != nil {
			return 0, err
		}
	}
	if len(read) > 0 {
		if err := s.rd.SetShipCursor(read[len(read)-1].Seq); err != nil {
			return 0, fmt.Errorf("cluster: move the ship cursor: %w", err)
		}
	}
	if err := s.clearCells(work); err != nil {
		return 0, err
	}
	s.noteCorrupt(corrupt)
	if len(read) > 0 {
		s.trim(ctx, read[len(read)-1].Seq)
	}
	n := len(work.Cells) + len(corrupt)
	for _, b := range work.Batches {
		n += len(b.Records)
	}
	return n, nil
}

// commit writes the work to PostgreSQL in one transaction; when it
// returns nil PostgreSQL holds it, and the cursor may move past it.
func (s *Shipper) commit(ctx context.Context, work metrics.ShipWork) error {
	ctx, cancel := s.c.deadline(ctx)
	defer cancel()
	if err := s.c.ensureReady(ctx); err != nil {
		return unavailable(err)
	}
	if len(work.Batches) > 0 {
		if err := s.partitions.ensure(ctx, s.c.pool, work.Batches); err != nil {
			return unavailable(err)
		}
	}
	inserted, err := s.insert(ctx, work)
	if err != nil {
		// A partition known to exist may have been dropped by retention
		// since: look again next round.
		s.partitions.forget()
		return unavailable(err)
	}
	s.shipped.Add(uint64(inserted))
	if s.afterCommit != nil {
		return s.afterCommit()
	}
	return nil
}

// clearCells clears the shipped cells in the data file and remembers
// where the next round's cells start.
func (s *Shipper) clearCells(work metrics.ShipWork) error {
	if len(work.Cells) == 0 {
		return nil
	}
	if _, err := s.rd.ClearShippedCells(work.Cells); err != nil {
		return fmt.Errorf("cluster: clear shipped cells: %w", err)
	}
	s.cellsFrom.set(work.CellsResume)
	return nil
}

// splitCorrupt separates the batches that decoded from those that did not.
func splitCorrupt(batches []metrics.Batch) (good, corrupt []metrics.Batch) {
	for _, b := range batches {
		if b.Corrupt != nil {
			corrupt = append(corrupt, b)
		} else {
			good = append(good, b)
		}
	}
	return good, corrupt
}

// noteCorrupt logs and counts the blocks the cursor has just passed
// without shipping them.
func (s *Shipper) noteCorrupt(corrupt []metrics.Batch) {
	for _, b := range corrupt {
		s.corrupt.Add(1)
		s.log.Error("a raw block of the data file does not decode; its records are not shipped", "err", b.Corrupt)
	}
}

// boundSpool deletes the oldest unshipped blocks beyond SpoolMaxRecords
// and logs each drop; a failure is logged and left to the next round.
func (s *Shipper) boundSpool(ctx context.Context) {
	d, err := s.rd.DropUnshipped(ctx, s.opts.SpoolMaxRecords)
	if d.Records > 0 {
		s.dropped.Add(uint64(d.Records))
		s.log.Warn("the records waiting to ship passed cluster.spool_max_records; the oldest are dropped",
			"records", d.Records, "blocks", d.Blocks, "from", d.From, "to", d.To, "spool_max_records", s.opts.SpoolMaxRecords)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("bounding the records waiting to ship failed", "err", err)
	}
}

// trim deletes the blocks up to the cursor from the data file; a failure
// is logged and left to the next round, which trims up to its cursor.
func (s *Shipper) trim(ctx context.Context, cursor uint64) {
	if _, err := s.rd.TrimShipped(ctx, cursor); err != nil && ctx.Err() == nil {
		s.log.Warn("deleting shipped records from the data file failed; the next round tries again", "err", err)
	}
}

// insert writes the batch rows, the records of the new batches and the
// cells in one transaction and returns how many records it inserted.
// Records and cells of a key or owner erased since they were written to
// the data file (loadErasures) are left out and counted; the erased cells
// are cleared in the data file all the same, as shipped.
func (s *Shipper) insert(ctx context.Context, work metrics.ShipWork) (int, error) {
	inserted := 0
	var erased *erasureFilter
	err := pgx.BeginFunc(ctx, s.c.pool, func(tx pgx.Tx) error {
		var err error
		if erased, err = loadErasures(ctx, tx, work); err != nil {
			return err
		}
		n, skipped, err := insertBatches(ctx, tx, s.c.opts.InstanceID, work.Batches, erased)
		if err != nil {
			return err
		}
		if skipped > 0 {
			s.log.Info("skipping batches shipped before", "batches", skipped)
		}
		inserted = n
		_, err = upsertCells(ctx, tx, s.c.opts.InstanceID, newCellArrays(work.Cells, erased))
		return err
	})
	if err == nil && erased != nil && erased.records+erased.cells > 0 {
		s.erasedDropped.Add(uint64(erased.records))
		s.log.Info("records and cells of erased keys or owners were dropped instead of shipped",
			"records", erased.records, "cells", erased.cells)
	}
	return inserted, err
}

// insertBatches inserts a batch row per batch and the records of the
// batches whose row was new, but not those erased drops (nil: none), and
// returns the records inserted and the batches skipped as shipped before.
func insertBatches(ctx context.Context, tx pgx.Tx, instance string, batches []metrics.Batch, erased *erasureFilter) (inserted, skipped int, err error) {
	if len(batches) == 0 {
		return 0, 0, nil
	}
	seqs := make([]int64, len(batches))
	counts := make([]int32, len(batches))
	for i, b := range batches {
		seqs[i], counts[i] = int64(b.Seq), int32(len(b.Records))
	}
	rows, err := tx.Query(ctx, `INSERT INTO apiwarden_shipped_batches (instance_id, seq, records)
		SELECT $1, unnest($2::bigint[]), unnest($3::integer[])
		ON CONFLICT (instance_id, seq) DO NOTHING RETURNING seq`, instance, seqs, counts)
	if err != nil {
		return 0, 0, err
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, 0, err
	}
	src := newRecordRows(instance, batches, fresh, erased)
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"apiwarden_records"}, recordColumns, src)
	return int(n), len(batches) - len(fresh), err
}

// cellResume is where the next round's scan of changed cells starts
// (metrics.ShipQuery.CellsFrom); rounds may run at once.
type cellResume struct {
	mu   sync.Mutex
	from []byte
}

func (c *cellResume) get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from
}

func (c *cellResume) set(from []byte) {
	c.mu.Lock()
	c.from = from
	c.mu.Unlock()
}

// reportBacklog writes the backlog (records and cells) and the records
// dropped into this instance's heartbeat row; a failure is left to the
// next round.
func (s *Shipper) reportBacklog(ctx context.Context) {
	b, err := s.rd.ShipBacklog()
	if err != nil {
		s.log.Debug("reading the shipping backlog failed", "err", err)
		return
	}
	dropped, err := s.rd.ShipDropped()
	if err != nil {
		s.log.Debug("reading the records dropped unshipped failed", "err", err)
		return
	}
	var oldest *time.Time
	if b.Records > 0 {
		oldest = &b.Oldest
	}
	ctx, cancel := s.c.deadline(ctx)
	defer cancel()
	if _, err := s.c.pool.Exec(ctx, `UPDATE apiwarden_instances SET ship_waiting = $2, ship_oldest = $3, ship_dropped = $4,
			ship_waiting_cells = $5 WHERE id = $1`,
		s.c.opts.InstanceID, b.Records, oldest, int64(dropped), b.Cells); err != nil {
		s.log.Debug("reporting the shipping backlog failed", "err", err)
	}
}
