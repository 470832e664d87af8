// Package cluster joins apiwarden instances through PostgreSQL
// (README.md, "Cluster mode").
//
// PostgreSQL is the system of record for keys and their audit events; each
// instance keeps serving from its own bbolt file, which package keys keeps
// as a mirror. A Cluster is the connection pool and the schema: it
// implements keys.SystemOfRecord, so an admin write commits in PostgreSQL
// with its audit event and a change sequence, announced with NOTIFY. A
// Listener holds one dedicated connection that LISTENs for those
// announcements and brings the mirror up to date after each one, after
// every (re)connect and on a timer, so a mirror converges even when a
// notification was lost. Last-used times and denial events are merged in
// by each instance's write-behind flush and pulled back by the others'
// (usage.go), apart from the key changes. A Leader elects the one
// instance that performs a duty for all (alert evaluation) through a row
// with a lease.
//
// Nothing on the request path calls into this package: keys are verified
// from the mirror. While PostgreSQL is unreachable, writes fail with an
// error wrapping keys.ErrUnavailable, Healthy reports false, and the
// instance keeps serving the keys it has.
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
	"github.com/jackc/pgx/v5/pgxpool"
)

// clusterMaxConns bounds the Cluster's pool: admin writes and mirror
// syncs are few and short.
const clusterMaxConns = 8

// Options configure a Cluster.
type Options struct {
	// URL is the PostgreSQL connection URL (postgres://...); required.
	URL string
	// InstanceID names this instance; it becomes the connections'
	// application_name, so pg_stat_activity shows who is connected.
	InstanceID string
	// KeySecretCheck is keys.SecretCheck of this instance's key secret.
	// The first instance records it; one with another secret is refused
	// (ErrKeySecretMismatch), since none of the cluster's keys would
	// verify on it. Empty skips the check.
	KeySecretCheck string
	// Timeout bounds each call to PostgreSQL that comes without a
	// deadline of its own (default 5s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Cluster is the pool of connections to the cluster's PostgreSQL and the
// state of its schema. All methods are safe for concurrent use.
type Cluster struct {
	pool    retryPool       // retries a statement whose connection died (retry_pool.go)
	listen  *pgx.ConnConfig // for the Listener's dedicated connection
	opts    Options
	log     *slog.Logger
	timeout time.Duration

	readyMu sync.Mutex // serialises schema checks
	ready   atomic.Bool
	up      atomic.Bool // the Listener's connection is live
}

// Open creates the pool and, when PostgreSQL answers, migrates the schema
// (Migrate) and checks the key secret. It does not fail when PostgreSQL is
// unreachable: the instance then serves from its mirror, and the Listener
// finishes the start once it connects. It does fail for a URL pgx cannot
// parse, ErrSchemaNewer, ErrKeySecretMismatch, and any other error a
// reachable server gives, since those need a person, not a retry.
func Open(ctx context.Context, opts Options) (*Cluster, error) {
	return open(ctx, opts, nil)
}

// open is Open with tune, when not nil, changing the pool's configuration
// last.
func open(ctx context.Context, opts Options, tune func(*pgxpool.Config)) (*Cluster, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, errors.New("cluster: postgres_url is not a URL pgx can parse")
	}
	if opts.InstanceID != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "apiwarden/" + opts.InstanceID
	}
	cfg.MaxConns = clusterMaxConns
	c := &Cluster{listen: cfg.ConnConfig.Copy(), opts: opts, log: opts.Logger, timeout: opts.Timeout}
	if tune != nil {
		tune(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.pool = retryPool{pool}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := c.ensureReady(ctx); err != nil {
		if unreachable(err) {
			c.log.Warn("PostgreSQL unreachable at start: serving keys from the local mirror until it answers", "err", err)
			return c, nil
		}
		c.pool.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the pool. Stop the Listener first.
func (c *Cluster) Close() { c.pool.Close() }

// Healthy reports whether the Listener is connected with the schema
// checked: admin writes can commit and changes reach this instance.
func (c *Cluster) Healthy() bool { return c.up.Load() && c.ready.Load() }

// Pool is the connection pool, for tests and tools.
func (c *Cluster) Pool() *pgxpool.Pool { return c.pool.Pool }

// deadline gives ctx the cluster's timeout unless it has a deadline.
func (c *Cluster) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// ensureReady migrates the schema and checks the key secret, once: after
// the first success it returns nil at once.
func (c *Cluster) ensureReady(ctx context.Context) error {
	if c.ready.Load() {
		return nil
	}
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	if c.ready.Load() {
		return nil
	}
	applied, err := Migrate(ctx, c.pool.Pool)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		c.log.Info("PostgreSQL schema migrated", "versions", applied, "now", SchemaVersion())
	}
	if err := c.checkKeySecret(ctx); err != nil {
		return err
	}
	c.ready.Store(true)
	return nil
}

func (c *Cluster) checkKeySecret(ctx context.Context) error {
	if c.opts.KeySecretCheck == "" {
		return nil
	}
	var stored string
	err := c.pool.QueryRow(ctx, `INSERT INTO apiwarden_meta (name, value) VALUES ('key_secret_check', $1)
		ON CONFLICT (name) DO UPDATE SET value = apiwarden_meta.value RETURNING value`, c.opts.KeySecretCheck).Scan(&stored)
	if err != nil {
		return err
	}
	if stored != c.opts.KeySecretCheck {
		return fmt.Errorf("%w: set APIWARDEN_KEY_SECRET to the value the other instances use", ErrKeySecretMismatch)
	}
	return nil
}

// unreachable says err means "PostgreSQL did not answer" (a retry may
// succeed) rather than "PostgreSQL said no".
func unreachable(err error) bool {
	if errors.Is(err, ErrSchemaNewer) || errors.Is(err, ErrKeySecretMismatch) || errors.Is(err, ErrBadMigration) {
		return false
	}
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		// Class 08 is a connection exception, 57P is an operator
		// intervention such as a shutdown.
		s := pgErr.SQLState()
		return len(s) >= 2 && (s[:2] == "08" || s[:3] == "57P")
	}
	return true
}

// Ready reports whether the schema has been checked: PostgreSQL has been
// reached since start.
func (c *Cluster) Ready() bool { return c.ready.Load() }
