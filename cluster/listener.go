package cluster

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// Mirror is what the Listener keeps up to date: keys.Service in the app.
type Mirror interface {
	// Sync applies the changes after MirrorSeq; see keys.Service.Sync.
	Sync(ctx context.Context) error
	// MirrorSeq is the last change sequence the mirror has applied.
	MirrorSeq() int64
}

// ListenerOptions tune a Listener; zero values take the defaults.
type ListenerOptions struct {
	// ResyncInterval is how long the listener waits for a notification
	// before it syncs anyway (default 30s): the fallback for a
	// notification lost on a connection that looked alive.
	ResyncInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnects, which
	// doubles after each failure (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// Handlers receive the notifications of other channels on the same
	// connection (one LISTEN connection for every topic), by channel name,
	// e.g. LeadersChannel. They are called on the listener's goroutine
	// and must not block.
	Handlers map[string]func(payload string)
	// CatchUp, when set, is called on the listener's goroutine after each
	// connect (its LISTENs in place, the mirror synced) and after each
	// quiet ResyncInterval's sync: whenever a notification may have been
	// missed, so a handler's owner can read what it missed (the
	// ErasureFollower's Wake). It must not block.
	CatchUp func()
}

// Listener holds this instance's one dedicated LISTEN connection and keeps
// a Mirror current: it syncs after connecting (so a start or a reconnect
// catches up on whatever happened meanwhile), after each notification
// whose sequence the mirror has not applied (a gap needs no special case:
// a sync reads every change after the mirror's last), and every
// ResyncInterval. While it is not connected, Cluster.Healthy reports false.
//
// Run and Stop follow internal/lifecycle: Run once, Stop safe before Run,
// twice and from several goroutines, returning when Run has.
type Listener struct {
	c      *Cluster
	mirror Mirror
	opts   ListenerOptions
	life   lifecycle.State
}

// NewListener makes a Listener for c that keeps mirror up to date.
func NewListener(c *Cluster, mirror Mirror, opts ListenerOptions) *Listener {
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = 30 * time.Second
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	return &Listener{c: c, mirror: mirror, opts: opts}
}

// Run listens until ctx ends or Stop is called, reconnecting with backoff
// after any failure. It returns nil; failures are logged.
func (l *Listener) Run(ctx context.Context) error {
	return l.life.Run("cluster listener", func(stop <-chan struct{}) error {
		ctx, cancel := withStop(ctx, stop)
		defer cancel()
		backoff := l.opts.MinBackoff
		for ctx.Err() == nil {
			connected, err := l.session(ctx)
			l.c.up.Store(false)
			if ctx.Err() != nil {
				return nil
			}
			if connected {
				backoff = l.opts.MinBackoff
			}
			if unreachable(err) {
				l.c.log.Warn("cluster listener lost PostgreSQL; serving keys from the local mirror", "err", err, "retry_in", backoff.String())
			} else {
				// A newer schema, another key secret: retrying will not help
				// until a person acts, but it costs little and recovers then.
				l.c.log.Error("cluster listener: PostgreSQL refused this instance; serving keys from the local mirror", "err", err, "retry_in", backoff.String())
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(2*backoff, l.opts.MaxBackoff)
		}
		return nil
	})
}

// Stop ends Run and waits for it.
func (l *Listener) Stop() { l.life.Stop(nil) }

// session connects, LISTENs, syncs, and then waits for notifications until
// the connection fails or ctx ends. connected says it got as far as a
// live, synced connection (so the next failure starts a fresh backoff).
func (l *Listener) session(ctx context.Context) (connected bool, err error) {
	callCtx, cancel := context.WithTimeout(ctx, l.c.timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(callCtx, l.c.listen)
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if err := l.c.ensureReady(callCtx); err != nil {
		return false, err
	}
	for _, ch := range l.channels() {
		if _, err := conn.Exec(callCtx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return false, err
		}
	}
	if err := l.sync(ctx); err != nil {
		return false, err
	}
	l.c.up.Store(true)
	l.c.log.Info("cluster listener connected; mirror in sync", "seq", l.mirror.MirrorSeq())
	l.catchUp()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, l.opts.ResyncInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, nil
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: check the connection and sync anyway.
			if err := l.ping(ctx, conn); err != nil {
				return true, err
			}
			if err := l.sync(ctx); err != nil {
				return true, err
			}
			l.catchUp()
		case err != nil:
			return true, err
		case n.Channel != KeysChannel:
			if handle := l.opts.Handlers[n.Channel]; handle != nil {
				handle(n.Payload)
			}
		default:
			if seq, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil && seq <= l.mirror.MirrorSeq() {
				continue // this instance's own write, applied already
			}
			if err := l.sync(ctx); err != nil {
				return true, err
			}
		}
	}
}

// channels are the channels the listener LISTENs on: the key changes and
// each handler's.
func (l *Listener) channels() []string {
	out := []string{KeysChannel}
	for ch := range l.opts.Handlers {
		if ch != KeysChannel {
			out = append(out, ch)
		}
	}
	return out
}

// sync brings the mirror up to date. It sets no deadline of its own: a
// large backlog (a new, empty mirror) takes as many batches as it needs,
// and each call to PostgreSQL is bounded by the cluster's timeout.
func (l *Listener) sync(ctx context.Context) error {
	return l.mirror.Sync(ctx)
}

// catchUp calls the CatchUp hook, if any.
func (l *Listener) catchUp() {
	if l.opts.CatchUp != nil {
		l.opts.CatchUp()
	}
}

func (l *Listener) ping(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, l.c.timeout)
	defer cancel()
	return conn.Ping(ctx)
}
