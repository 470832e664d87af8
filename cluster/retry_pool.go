package cluster

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// retryPool is a pool of connections whose calls run once more, on a
// fresh connection, when their connection was dead: Query and QueryRow
// (read-only statements), Exec (idempotent writes) and Begin / BeginTx
// (a transaction whose BEGIN failed). The Cluster's pool (key writes,
// sessions, realtime, shipper, leader) and the analytics Source's pool
// are both one.
//
// A pooled connection is pinged before use only when it has been idle
// for a second or more (pgxpool's default), so after PostgreSQL restarts
// (or a proxy between drops its connections) each connection used within
// the last second fails the first statement sent on it; with four of
// them, four analytics requests in a row would answer 503, and an admin
// key write 503, although PostgreSQL is back.
//
// When a retry is safe: a statement sent through Query, QueryRow or Exec
// outside a transaction must be one that running twice leaves as running
// once: a SELECT, or an idempotent write (an upsert of the same values, a
// DELETE by key); every caller in this package is one of these. A
// transaction is retried only when its BEGIN failed, before any of its
// statements ran. pgconn.SafeToRetry (nothing was sent) does not cover
// this case: writing to a connection the server closed usually succeeds,
// and the failure comes with the read that follows (the server's FATAL
// "terminating connection", or end of file). The retry is made only when
// the error also closed the connection (pgconn closes it on any I/O error
// and on a FATAL from the server, never on an error in the statement
// itself, such as a bad query or a constraint), the caller's context has
// not ended (a cancelled query also closes its connection), and, for
// Query, no row had been returned: a statement that fails after its first
// row is not run again, because the caller may have used what it read. A
// dead connection fails on the first read: inside Query, or in the rows'
// first Next when the statement was prepared on that connection before
// (pgx then sends it and returns without reading).
//
// Before the retry the pool's idle connections are closed (Reset): they
// were opened before the same restart and are as dead, and the retry must
// not take one of them. Connections in use are closed when released.
// Safe for concurrent use, as pgxpool.Pool is.
type retryPool struct {
	*pgxpool.Pool
}

// Query runs sql once, or twice as described on retryPool. The rows must
// be closed, as pgxpool.Pool.Query's; their Conn is not usable. A dead
// connection may show in Query's error or, when the statement was
// prepared on it before, in the rows' first Next: both are retried.
func (p retryPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r := &retryingRows{pool: p, ctx: ctx, sql: sql, args: args}
	if err := r.run(); err != nil {
		return nil, err
	}
	return r, nil
}

// QueryRow is Query for a statement of one row, so that it is retried as
// Query's are; the embedded pgxpool.Pool's QueryRow would not be.
func (p retryPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	return oneRow{rows: rows, err: err}
}

// oneRow is the pgx.Row of retryPool.QueryRow: the first row of rows, or
// pgx.ErrNoRows.
type oneRow struct {
	rows pgx.Rows
	err  error
}

func (r oneRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// Exec runs an idempotent write once, or twice as described on retryPool.
func (p retryPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := p.onLiveConn(ctx, func(conn *pgxpool.Conn) error {
		var err error
		if tag, err = conn.Exec(ctx, sql, args...); err == nil {
			conn.Release()
		}
		return err
	})
	return tag, err
}

// Begin is BeginTx with the default options.
func (p retryPool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction as pgxpool.Pool.BeginTx does, starting it
// again on a fresh connection when its BEGIN failed on a dead one (see
// retryPool). The transaction's connection goes back to the pool when it
// commits or rolls back; like pgx.Tx it is for one goroutine.
func (p retryPool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	var tx pgx.Tx
	err := p.onLiveConn(ctx, func(conn *pgxpool.Conn) error {
		t, err := conn.BeginTx(ctx, opts)
		if err == nil {
			tx = &pooledTx{Tx: t, conn: conn}
		}
		return err
	})
	return tx, err
}

// onLiveConn calls do with a connection of the pool, and once more with
// a fresh one when do failed and the failure closed its connection (see
// retryPool). do keeps the connection when it succeeds (it must release
// it later); otherwise onLiveConn releases it.
func (p retryPool) onLiveConn(ctx context.Context, do func(*pgxpool.Conn) error) error {
	for retried := false; ; retried = true {
		conn, err := p.Acquire(ctx)
		if err != nil {
			return err
		}
		err = do(conn)
		if err == nil {
			return nil
		}
		died := conn.Conn().IsClosed()
		conn.Release()
		if !died || retried || ctx.Err() != nil {
			return err
		}
		p.Reset()
	}
}

// pooledTx is a transaction of a retryPool: it gives its connection back
// to the pool when it ends, as pgxpool's own transaction does. Commit
// and Rollback may both be called (pgx.BeginFunc rolls back after a
// commit); the connection is released once.
type pooledTx struct {
	pgx.Tx
	conn *pgxpool.Conn
}

func (t *pooledTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.release()
	return err
}

func (t *pooledTx) Rollback(ctx context.Context) error {
	err := t.Tx.Rollback(ctx)
	t.release()
	return err
}

func (t *pooledTx) release() {
	if t.conn != nil {
		t.conn.Release()
		t.conn = nil
	}
}

// retryingRows are the rows of one statement of a retryPool, which run it
// again, once, when its connection dies before the first row. Like
// pgx.Rows they are for one goroutine.
type retryingRows struct {
	pgx.Rows // of the current run
	conn     *pgxpool.Conn
	pool     retryPool
	ctx      context.Context
	sql      string
	args     []any
	retried  bool  // the statement ran a second time
	read     bool  // a row was returned: no retry after that
	err      error // the second run's error, when it could not start
}

// run runs the statement on a connection of the pool.
func (r *retryingRows) run() error {
	conn, err := r.pool.Acquire(r.ctx)
	if err != nil {
		return err
	}
	rows, err := conn.Query(r.ctx, r.sql, r.args...)
	if err != nil {
		died := conn.Conn().IsClosed()
		conn.Release()
		if r.mayRetry(died) {
			return r.run()
		}
		return err
	}
	r.Rows, r.conn = rows, conn
	return nil
}

// mayRetry says whether to run the statement again after it failed, died
// saying whether the failure closed its connection; if so, it resets the
// pool first.
func (r *retryingRows) mayRetry(died bool) bool {
	if !died || r.retried || r.read || r.ctx.Err() != nil {
		return false
	}
	r.retried = true
	r.pool.Reset()
	return true
}

func (r *retryingRows) Next() bool {
	if r.conn == nil {
		return false
	}
	if r.Rows.Next() {
		r.read = true
		return true
	}
	died := r.Rows.Err() != nil && r.conn.Conn().IsClosed()
	r.Close()
	if !r.mayRetry(died) {
		return false
	}
	if err := r.run(); err != nil {
		r.err = err
		return false
	}
	return r.Next()
}

func (r *retryingRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

// Close closes the rows and gives the connection back to the pool.
func (r *retryingRows) Close() {
	r.Rows.Close()
	if r.conn != nil {
		r.conn.Release()
		r.conn = nil
	}
}
