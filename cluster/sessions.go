package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// SaveSession records a dashboard session, under the SHA-256 of its id,
// until expires, and drops sessions that have expired, so the table holds
// only live ones. It is one idempotent statement (an upsert), so the pool
// may run it again when its connection was dead (retry_pool.go). Errors
// wrap keys.ErrUnavailable when PostgreSQL cannot be reached.
func (c *Cluster) SaveSession(ctx context.Context, idHash [32]byte, csrf string, expires time.Time) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	_, err := c.pool.Exec(ctx, `WITH expired AS (DELETE FROM apiwarden_sessions WHERE expires < now())
		INSERT INTO apiwarden_sessions (id_hash, csrf, expires) VALUES ($1, $2, $3)
		ON CONFLICT (id_hash) DO UPDATE SET csrf = excluded.csrf, expires = excluded.expires`, idHash[:], csrf, expires)
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// LoadSession returns the CSRF token and expiry of the session whose id
// hashes to idHash; ok is false when there is none.
func (c *Cluster) LoadSession(ctx context.Context, idHash [32]byte) (csrf string, expires time.Time, ok bool, err error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	err = c.pool.QueryRow(ctx, "SELECT csrf, expires FROM apiwarden_sessions WHERE id_hash = $1", idHash[:]).Scan(&csrf, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", time.Time{}, false, nil
	case err != nil:
		return "", time.Time{}, false, unavailable(err)
	}
	return csrf, expires, true, nil
}

// EndSession removes a session on every instance at once; ending an
// unknown one is not an error.
func (c *Cluster) EndSession(ctx context.Context, idHash [32]byte) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if _, err := c.pool.Exec(ctx, "DELETE FROM apiwarden_sessions WHERE id_hash = $1", idHash[:]); err != nil {
		return unavailable(err)
	}
	return nil
}
