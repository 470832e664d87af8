package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/metrics"
)

// MigrateFiles runs Migrate over the given SQL by version instead of the
// embedded files.
func MigrateFiles(ctx context.Context, pool *pgxpool.Pool, sql map[int]string) ([]int, error) {
	var list []migration
	for v, s := range sql {
		list = append(list, migration{Version: v, Name: fmt.Sprintf("test_%d", v), SQL: s})
	}
	slices.SortFunc(list, func(a, b migration) int { return a.Version - b.Version })
	return migrate(ctx, pool, list)
}

// NewSourceUnpinged is NewSource whose pool keeps SourceMaxConns
// connections open and never pings one before use, as pgxpool does not
// ping one used within the last second: after a restart of PostgreSQL
// every pooled connection is then dead to the next statement sent on it,
// however long the restart took.
func NewSourceUnpinged(c *Cluster, opts SourceOptions) (*Source, error) {
	return newSource(c, opts, unpinged)
}

// OpenUnpinged is Open whose pool keeps ClusterMaxConns connections
// open and never pings one before use, as NewSourceUnpinged's.
func OpenUnpinged(ctx context.Context, opts Options) (*Cluster, error) {
	return open(ctx, opts, unpinged)
}

// unpinged makes a pool keep all its connections and never ping one.
func unpinged(cfg *pgxpool.Config) {
	cfg.MinConns = cfg.MaxConns
	cfg.HealthCheckPeriod = time.Hour
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
}

// ClusterMaxConns is the bound of a Cluster's pool.
const ClusterMaxConns = clusterMaxConns

// OpenConns is how many connections c's pool holds.
func (c *Cluster) OpenConns() int { return int(c.pool.Stat().TotalConns()) }

// SourceMaxConns is the bound of a Source's pool.
const SourceMaxConns = sourceMaxConns

// OpenConns is how many connections s's pool holds.
func (s *Source) OpenConns() int { return int(s.pool.Stat().TotalConns()) }

// RecordErasure writes the erasure of key in tx as EraseUsage does, with
// its lock and notification, and returns its id.
func RecordErasure(ctx context.Context, tx pgx.Tx, instance, key string) (int64, error) {
	return recordErasure(ctx, tx, instance, metrics.EraseRequest{KeyID: key, RequestedBy: "admin:test"}, nil)
}
