package cluster

import (
	"context"
	"fmt"

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
	c *Cluster
}

var _ analytics.Source = (*Source)(nil)

// NewSource returns the analytics source over c's PostgreSQL.
func NewSource(c *Cluster) *Source { return &Source{c: c} }

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
