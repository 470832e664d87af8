package cluster

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// readPool is the Source's pool of connections. Its Query runs a
// read-only statement and, when the statement failed because its
// connection was dead, runs it once more on a fresh connection.
//
// A pooled connection is pinged before use only when it has been idle
// for a second or more (pgxpool's default), so after PostgreSQL restarts
// (or a proxy between drops its connections) each connection used within
// the last second fails the first statement sent on it; with four of
// them, four analytics requests in a row would answer 503 although
// PostgreSQL is back.
//
// When a retry is safe: every statement of the Source is a SELECT, which
// changes nothing, so running it twice is harmless whether or not the
// first run reached the server. pgconn.SafeToRetry (nothing was sent)
// does not cover this case: writing to a connection the server closed
// usually succeeds, and the failure comes with the read that follows (the
// server's FATAL "terminating connection", or end of file). The retry is
// made only when the error also closed the connection (pgconn closes it
// on any I/O error and on a FATAL from the server, never on an error in
// the statement itself, such as a bad query or a constraint), the
// caller's context has not ended (a cancelled query also closes its
// connection), and no row had been returned: a statement that fails
// after its first row is not run again, because the caller may have used
// what it read. A dead connection fails on the first read: inside Query,
// or in the rows' first Next when the statement was prepared on that
// connection before (pgx then sends it and returns without reading).
//
// Before the retry the pool's idle connections are closed (Reset): they
// were opened before the same restart and are as dead, and the retry must
// not take one of them. Connections in use are closed when released.
// Safe for concurrent use, as pgxpool.Pool is.
type readPool struct {
	*pgxpool.Pool
}

// Query runs sql once, or twice as described on readPool. The rows must
// be closed, as pgxpool.Pool.Query's; their Conn is not usable. A dead
// connection may show in Query's error or, when the statement was
// prepared on it before, in the rows' first Next: both are retried.
func (p readPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r := &retryingRows{pool: p, ctx: ctx, sql: sql, args: args}
	if err := r.run(); err != nil {
		return nil, err
	}
	return r, nil
}

// QueryRow is Query for a statement of one row, so that it is retried as
// Query's are; the embedded pgxpool.Pool's QueryRow would not be.
func (p readPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	return oneRow{rows: rows, err: err}
}

// oneRow is the pgx.Row of readPool.QueryRow: the first row of rows, or
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

// retryingRows are the rows of one statement of a readPool, which run it
// again, once, when its connection dies before the first row. Like
// pgx.Rows they are for one goroutine.
type retryingRows struct {
	pgx.Rows // of the current run
	conn     *pgxpool.Conn
	pool     readPool
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
