package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Retention defaults (RetentionOptions fields left at zero).
const (
	DefaultRetentionInterval = time.Hour
	DefaultRetentionPoll     = 5 * time.Second
)

// retentionDeleteBatch bounds the rows one DELETE statement removes, so
// no statement holds its row locks or builds its WAL for long.
const retentionDeleteBatch = 10000

// retentionLockTimeout bounds how long dropping a partition waits for its
// lock on apiwarden_records: a DROP queued behind a long read would hold
// up every insert queued behind it. A pass that gives up tries again at
// the next one.
const retentionLockTimeout = "5s"

// RetentionOptions say what the cluster's PostgreSQL keeps, in UTC days as
// [metrics] says for a data file (metrics/recorder.go, cutoffs): data of
// day D goes once the current UTC day is later than D + N; 0 keeps it.
type RetentionOptions struct {
	RawDays, HourlyDays, DailyDays int
	// Interval is the time between two passes while this instance leads
	// (default DefaultRetentionInterval); a pass also runs as soon as it
	// takes the duty.
	Interval time.Duration
	// Poll is how often Run asks whether this instance leads (default
	// DefaultRetentionPoll).
	Poll time.Duration
	// Now is the clock the cut-offs are taken from; nil: time.Now.
	Now func() time.Time
}

// Leadership says whether this instance holds a duty now; *Leader is one.
type Leadership interface {
	Leading() bool
}

// RetentionResult says what one pass deleted.
type RetentionResult struct {
	Partitions  []string // dropped partitions of apiwarden_records
	HourlyCells int64    // rows of apiwarden_cells
	DailyCells  int64
	Batches     int64 // rows of apiwarden_shipped_batches
	Erasures    int64 // rows of apiwarden_erasures
}

// Retention deletes what the cluster no longer keeps from PostgreSQL, on
// the instance that leads its duty only, as each data file's retention
// does for it: the daily partitions of apiwarden_records wholly before the
// raw cut-off, the apiwarden_cells rows of hours and days before theirs,
// the apiwarden_shipped_batches rows shipped before the raw cut-off, and
// the apiwarden_erasures rows no shipper needs any more (pruneErasures).
//
// Run and Stop (passDuty) follow internal/lifecycle; the counters are
// safe for concurrent use.
type Retention struct {
	passDuty
	c    *Cluster
	opts RetentionOptions

	partitions atomic.Uint64 // partitions this process dropped
	rows       atomic.Uint64 // rows this process deleted
}

// NewRetention makes the retention duty of c, which Run performs while
// lead says this instance leads (lead may be nil when only Apply is
// called): a pass at once when it takes the duty, then every Interval.
func NewRetention(c *Cluster, lead Leadership, opts RetentionOptions) *Retention {
	if opts.Interval <= 0 {
		opts.Interval = DefaultRetentionInterval
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultRetentionPoll
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Retention{c: c, opts: opts}
	r.name, r.failed = "cluster retention", "retention in PostgreSQL failed; will retry"
	r.lead, r.poll, r.interval, r.log = lead, opts.Poll, opts.Interval, c.log.With("duty", "retention")
	r.pass = func(ctx context.Context) error {
		_, err := r.Apply(ctx)
		return err
	}
	return r
}

// DroppedPartitions is how many partitions of apiwarden_records this
// process dropped.
func (r *Retention) DroppedPartitions() uint64 { return r.partitions.Load() }

// DeletedRows is how many rows of apiwarden_cells,
// apiwarden_shipped_batches and apiwarden_erasures this process deleted.
func (r *Retention) DeletedRows() uint64 { return r.rows.Load() }

// Apply runs one pass as of Now, leading or not, logs what it deleted and
// counts it. It stops at the first error (wrapping keys.ErrUnavailable
// when PostgreSQL cannot be reached); what it deleted before stays
// deleted and is in the result.
func (r *Retention) Apply(ctx context.Context) (RetentionResult, error) {
	var res RetentionResult
	err := r.apply(ctx, &res)
	r.partitions.Add(uint64(len(res.Partitions)))
	rows := res.HourlyCells + res.DailyCells + res.Batches + res.Erasures
	r.rows.Add(uint64(rows))
	if len(res.Partitions) > 0 || rows > 0 {
		r.log.Info("retention in PostgreSQL deleted expired data", "partitions", strings.Join(res.Partitions, ","),
			"hourly_cells", res.HourlyCells, "daily_cells", res.DailyCells, "shipped_batches", res.Batches, "erasures", res.Erasures)
	}
	if err != nil {
		return res, unavailable(err)
	}
	return res, nil
}

func (r *Retention) apply(ctx context.Context, res *RetentionResult) error {
	if err := r.c.ensureReady(ctx); err != nil {
		return err
	}
	now := r.opts.Now()
	if r.opts.RawDays > 0 {
		cut := retentionCutoff(now, r.opts.RawDays)
		if err := r.dropPartitions(ctx, cut, res); err != nil {
			return err
		}
		// A batch row guards a block against shipping twice only until
		// the cursor has moved past it, seconds after its commit. A row
		// shipped before the raw cut-off names a block whose records are
		// all older than the cut-off, so its data file has dropped that
		// day (and trimmed the block when the cursor moved) too: nothing
		// is left that could ship again.
		n, err := r.deleteBatched(ctx, "apiwarden_shipped_batches", "shipped_at < $1", cut)
		res.Batches = n
		if err != nil {
			return err
		}
	}
	var err error
	if r.opts.HourlyDays > 0 {
		res.HourlyCells, err = r.deleteBatched(ctx, "apiwarden_cells", "interval = 1 AND start < $1", retentionCutoff(now, r.opts.HourlyDays))
		if err != nil {
			return err
		}
	}
	if r.opts.DailyDays > 0 {
		res.DailyCells, err = r.deleteBatched(ctx, "apiwarden_cells", "interval = 2 AND start < $1", retentionCutoff(now, r.opts.DailyDays))
		if err != nil {
			return err
		}
	}
	res.Erasures, err = r.pruneErasures(ctx, now)
	return err
}

// pruneErasures deletes the apiwarden_erasures rows that no shipper needs
// any more (cluster/ship_erasures.go) and returns how many. An erasure at
// E covers the records and, with rollups, the key and owner cells from at
// or before E; a shipper can send one as long as some data file keeps it
// (records: raw retention; cells: hourly and daily, dirty cells included),
// as every data file follows the same [metrics]. So a raw-only erasure
// goes once E is before the raw cut-off, one with rollups once E is before
// all three; a retention of 0 keeps what it covers, and the erasure, for
// ever.
func (r *Retention) pruneErasures(ctx context.Context, now time.Time) (int64, error) {
	if r.opts.RawDays <= 0 {
		return 0, nil
	}
	rawCut := retentionCutoff(now, r.opts.RawDays)
	n, err := r.deleteBatched(ctx, "apiwarden_erasures", "NOT rollups AND erased_at < $1", rawCut)
	if err != nil || r.opts.HourlyDays <= 0 || r.opts.DailyDays <= 0 {
		return n, err
	}
	cellCut := retentionCutoff(now, max(r.opts.RawDays, r.opts.HourlyDays, r.opts.DailyDays))
	m, err := r.deleteBatched(ctx, "apiwarden_erasures", "rollups AND erased_at < $1", cellCut)
	return n + m, err
}

// retentionCutoff is the start of the first UTC day kept when days are
// kept as of now.
func retentionCutoff(now time.Time, days int) time.Time {
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
}

// dropPartitions drops the partitions of apiwarden_records for the UTC
// days before cut, each in its own transaction, and adds them to res.
func (r *Retention) dropPartitions(ctx context.Context, cut time.Time, res *RetentionResult) error {
	qctx, cancel := r.c.deadline(ctx)
	rows, err := r.c.pool.Query(qctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'apiwarden_records'::regclass ORDER BY c.relname`)
	var names []string
	if err == nil {
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	cancel()
	if err != nil {
		return fmt.Errorf("cluster: list the partitions of apiwarden_records: %w", err)
	}
	for _, name := range names {
		day, err := time.Parse("20060102", strings.TrimPrefix(name, "apiwarden_records_"))
		if err != nil || !day.Before(cut) {
			continue
		}
		if err := r.dropPartition(ctx, name); err != nil {
			return err
		}
		res.Partitions = append(res.Partitions, name)
	}
	return nil
}

func (r *Retention) dropPartition(ctx context.Context, name string) error {
	ctx, cancel := r.c.deadline(ctx)
	defer cancel()
	err := pgx.BeginFunc(ctx, r.c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+retentionLockTimeout+"'"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		return err
	})
	if err != nil {
		return fmt.Errorf("cluster: drop partition %s: %w", name, err)
	}
	return nil
}

// deleteBatched deletes the rows of table that match where (a condition
// on $1, the cut-off) retentionDeleteBatch at a time and returns how many
// it deleted.
func (r *Retention) deleteBatched(ctx context.Context, table, where string, cut time.Time) (int64, error) {
	sql := fmt.Sprintf(`DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %s LIMIT %d))`,
		table, table, where, retentionDeleteBatch)
	var total int64
	for {
		qctx, cancel := r.c.deadline(ctx)
		tag, err := r.c.pool.Exec(qctx, sql, cut)
		cancel()
		if err != nil {
			return total, fmt.Errorf("cluster: retention of %s: %w", table, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < retentionDeleteBatch {
			return total, nil
		}
	}
}
