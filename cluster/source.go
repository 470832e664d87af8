package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/analytics"
)

// Source is the cluster-wide analytics.Source: it answers from what every
// instance shipped to PostgreSQL, the rollup cells in apiwarden_cells
// (source_cells.go) and the raw records in apiwarden_records
// (source_records.go), with the semantics of the bbolt reader
// (metrics.Reader) over a single instance's file. Each call is one
// statement, so it reads one consistent snapshot; an answer covers what
// the instances had shipped when it began (each ships every flush
// interval), and nothing is answered from a partial read.
//
// Errors of reaching PostgreSQL wrap keys.ErrUnavailable (the admin API
// answers 503); a Source is safe for concurrent use.
type Source struct {
	c    *Cluster
	pool retryPool // retries a statement whose connection died
	now  func() time.Time
}

// SourceOptions configure a Source.
type SourceOptions struct {
	// Now is the clock, nil for time.Now. It only picks the day a page
	// of the newest records is first looked for in (Records); answers do
	// not depend on it.
	Now func() time.Time
}

var _ analytics.Source = (*Source)(nil)

// sourceMaxConns bounds the Source's own pool: analytics reads queue
// there rather than take the connections key writes and syncs need.
const sourceMaxConns = 4

// NewSource returns the analytics source over c's PostgreSQL, with a
// pool of its own (at most sourceMaxConns connections, opened as
// needed) whose prepared statements use generic plans: a statement over
// the partitioned apiwarden_records then prunes partitions when it runs
// instead of planning every day's partition on every call, which
// measured the larger part of a page's time. Close it before c.
func NewSource(c *Cluster, opts SourceOptions) (*Source, error) {
	return newSource(c, opts, nil)
}

// newSource is NewSource with tune, when not nil, changing the pool's
// configuration last.
func newSource(c *Cluster, opts SourceOptions, tune func(*pgxpool.Config)) (*Source, error) {
	cfg, err := pgxpool.ParseConfig(c.opts.URL)
	if err != nil {
		return nil, errors.New("cluster: postgres_url is not a URL pgx can parse")
	}
	if c.opts.InstanceID != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "apiwarden/" + c.opts.InstanceID + "/analytics"
	}
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	cfg.MaxConns = sourceMaxConns
	if tune != nil {
		tune(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Source{c: c, pool: retryPool{pool}, now: opts.Now}, nil
}

// Close closes the Source's pool; calls in flight fail.
func (s *Source) Close() { s.pool.Close() }

// begin gives ctx the cluster's timeout and checks that the schema is
// known to be current; the error wraps keys.ErrUnavailable.
func (s *Source) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	ctx, cancel := s.c.deadline(ctx)
	if err := s.c.ensureReady(ctx); err != nil {
		cancel()
		return nil, nil, unavailable(err)
	}
	return ctx, cancel, nil
}

// readError marks err, from reading PostgreSQL, as unavailable, unless
// the caller's ctx (not the deadline begin added) ended: then it is
// ctx's error.
func readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("cluster: reading analytics: %w", ctx.Err())
	}
	return unavailable(err)
}
