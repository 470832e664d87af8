package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// LeadersChannel is the NOTIFY channel a leader resigns on; the payload
// is the duty's name. The Listener delivers it to the Leader of that name
// so a follower takes over at once rather than after the lease expires.
const LeadersChannel = "apiwarden_leaders"

// LeaderOptions describe one duty's election.
type LeaderOptions struct {
	// Name is the duty, one row in apiwarden_leaders ("alerts").
	Name string
	// Holder is this instance's id.
	Holder string
	// TTL is the lease: a holder that has not renewed for TTL loses the
	// duty, and another instance may take it. Every instance tries to
	// take or renew it every TTL/2. Default 5s.
	TTL time.Duration
	// Now is the local monotonic clock, for tests; nil: time.Now.
	Now func() time.Time
}

// Leader elects one instance of the cluster for a duty through a row of
// apiwarden_leaders: the holder renews the row's expiry every TTL/2, and
// any instance takes a row whose expiry has passed (on PostgreSQL's
// clock). Stop resigns: it deletes the row and NOTIFYs LeadersChannel, so
// a follower takes over without waiting for the lease.
//
// Leading is true only while this instance holds a lease it knows to be
// valid: its local deadline is the time it SENT the last successful renew
// plus TTL, which is never later than the expiry PostgreSQL recorded. So
// two instances never both lead, even when a renewal fails or hangs; the
// price is a gap of up to TTL/2 plus one round trip after a holder dies
// or loses PostgreSQL.
//
// Run and Stop follow internal/lifecycle. All methods are safe for
// concurrent use.
type Leader struct {
	c    *Cluster
	opts LeaderOptions
	log  *slog.Logger
	now  func() time.Time
	life lifecycle.State

	nudge chan struct{} // a resignation was announced: try at once

	mu       sync.Mutex
	deadline time.Time // local lease end; zero when not leading
}

// NewLeader makes the election of opts.Name for the instance opts.Holder.
func NewLeader(c *Cluster, opts LeaderOptions) (*Leader, error) {
	if opts.Name == "" || opts.Holder == "" {
		return nil, errors.New("cluster: LeaderOptions need a Name and a Holder")
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Leader{c: c, opts: opts, log: c.log.With("duty", opts.Name), now: now, nudge: make(chan struct{}, 1)}, nil
}

// Leading reports whether this instance holds the duty now, by a lease
// that has not run out on the local clock.
func (l *Leader) Leading() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.deadline.IsZero() && l.now().Before(l.deadline)
}

// Resigned tells the Leader that the holder of the duty name resigned;
// when name is its duty it tries to take it at once. It never blocks: it
// is the Listener's handler for LeadersChannel.
func (l *Leader) Resigned(name string) {
	if name != l.opts.Name {
		return
	}
	select {
	case l.nudge <- struct{}{}:
	default:
	}
}

// Run tries to take or renew the duty at once and then every TTL/2 (and
// after each resignation) until ctx ends or Stop is called; then it
// resigns if it leads. Failures are logged; Run returns nil.
func (l *Leader) Run(ctx context.Context) error {
	return l.life.Run("cluster leader "+l.opts.Name, func(stop <-chan struct{}) error {
		ticker := time.NewTicker(l.opts.TTL / 2)
		defer ticker.Stop()
		for {
			l.attempt(ctx)
			select {
			case <-ctx.Done():
				l.resign()
				return nil
			case <-stop:
				l.resign()
				return nil
			case <-ticker.C:
			case <-l.nudge:
			}
		}
	})
}

// Stop resigns the duty (if held), ends Run and waits for it.
func (l *Leader) Stop() { l.life.Stop(nil) }

// attempt takes the row when it is free or expired and renews it when
// this instance holds it, in one statement, so two instances racing for
// an expired row cannot both win.
func (l *Leader) attempt(ctx context.Context) {
	sent := l.now()
	ctx, cancel := context.WithTimeout(ctx, l.opts.TTL/2)
	defer cancel()
	var holder string
	err := l.c.pool.QueryRow(ctx, `INSERT INTO apiwarden_leaders (name, holder, elected_at, expires_at)
		VALUES ($1, $2, now(), now() + make_interval(secs => $3))
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			elected_at = CASE WHEN apiwarden_leaders.holder = excluded.holder
				THEN apiwarden_leaders.elected_at ELSE now() END
		WHERE apiwarden_leaders.holder = excluded.holder OR apiwarden_leaders.expires_at < now()
		RETURNING holder`, l.opts.Name, l.opts.Holder, l.opts.TTL.Seconds()).Scan(&holder)
	l.mu.Lock()
	defer l.mu.Unlock()
	was := !l.deadline.IsZero() && l.now().Before(l.deadline)
	switch {
	case err == nil:
		l.deadline = sent.Add(l.opts.TTL)
		if !was {
			l.log.Info("this instance now leads", "ttl", l.opts.TTL.String())
		}
	case errors.Is(err, pgx.ErrNoRows):
		// Another instance holds a lease that has not expired.
		l.deadline = time.Time{}
		if was {
			l.log.Warn("another instance took the duty")
		}
	default:
		// Unknown: keep the local deadline, which runs out by itself
		// before PostgreSQL's expiry does.
		l.log.Debug("leader election failed; will retry", "err", err)
	}
}

// resign gives the duty up if this instance holds it and announces it.
func (l *Leader) resign() {
	l.mu.Lock()
	held := !l.deadline.IsZero()
	l.deadline = time.Time{}
	l.mu.Unlock()
	if !held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.c.timeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, l.c.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM apiwarden_leaders WHERE name = $1 AND holder = $2", l.opts.Name, l.opts.Holder)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, $2)", LeadersChannel, l.opts.Name)
		return err
	})
	if err != nil {
		l.log.Warn("could not resign; the lease will expire by itself", "err", err)
		return
	}
	l.log.Info("resigned")
}

// LeaderInfo is who holds a duty, as PostgreSQL has it.
type LeaderInfo struct {
	Name      string    `json:"name"`
	Holder    string    `json:"holder"`
	ElectedAt time.Time `json:"elected_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Leaders lists the duties whose lease has not expired, by name. Errors
// wrap keys.ErrUnavailable when PostgreSQL cannot be reached.
func (c *Cluster) Leaders(ctx context.Context) ([]LeaderInfo, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT name, holder, elected_at, expires_at FROM apiwarden_leaders
		WHERE expires_at >= now() ORDER BY name`)
	if err != nil {
		return nil, unavailable(err)
	}
	out := []LeaderInfo{}
	out, err = pgx.AppendRows(out, rows, func(row pgx.CollectableRow) (LeaderInfo, error) {
		var in LeaderInfo
		err := row.Scan(&in.Name, &in.Holder, &in.ElectedAt, &in.ExpiresAt)
		in.ElectedAt, in.ExpiresAt = in.ElectedAt.UTC(), in.ExpiresAt.UTC()
		return in, err
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
