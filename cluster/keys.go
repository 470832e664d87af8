package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/keys"
)

var _ keys.SystemOfRecord = (*Cluster)(nil)

// KeysChannel is the NOTIFY channel every key change is announced on; the
// payload is the change's sequence.
const KeysChannel = "apiwarden_keys"

// CreateKey stores a new key's record with its event as one change and
// announces it. It is safe for concurrent use; changes commit one at a
// time, in sequence order. Errors wrap keys.ErrUnavailable when
// PostgreSQL cannot be reached or did not confirm the commit.
func (c *Cluster) CreateKey(ctx context.Context, id string, record []byte, ev keys.Event) (int64, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := c.ensureReady(ctx); err != nil {
		return 0, unavailable(err)
	}
	var seq int64
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var err error
		if seq, err = nextSeq(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO apiwarden_keys (id, record, seq) VALUES ($1, $2, $3)", id, string(record), seq); err != nil {
			return err
		}
		return writeEvent(ctx, tx, seq, ev)
	})
	if err != nil {
		return 0, unavailable(err)
	}
	return seq, nil
}

// changeError carries an error of the caller's change function through
// the transaction, so it is returned as it is, not as unavailability.
type changeError struct{ err error }

func (e changeError) Error() string { return e.err.Error() }

// ModifyKey locks the key's row, passes its record to change and stores
// what change returns with its event as one change, announced with NOTIFY
// on commit. Concurrent calls for one key, from any instance, apply one
// after the other. Errors: keys.ErrNotFound, what change returns, and
// errors wrapping keys.ErrUnavailable.
func (c *Cluster) ModifyKey(ctx context.Context, id string, change func([]byte) ([]byte, keys.Event, error)) (int64, []byte, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := c.ensureReady(ctx); err != nil {
		return 0, nil, unavailable(err)
	}
	var seq int64
	var next []byte
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var current []byte
		err := tx.QueryRow(ctx, "SELECT record FROM apiwarden_keys WHERE id = $1 FOR UPDATE", id).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return changeError{keys.ErrNotFound}
		} else if err != nil {
			return err
		}
		var ev keys.Event
		if next, ev, err = change(current); err != nil {
			return changeError{err}
		}
		if seq, err = nextSeq(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE apiwarden_keys SET record = $2, seq = $3, updated_at = now() WHERE id = $1", id, string(next), seq); err != nil {
			return err
		}
		return writeEvent(ctx, tx, seq, ev)
	})
	var ce changeError
	if errors.As(err, &ce) {
		return 0, nil, ce.err
	}
	if err != nil {
		return 0, nil, unavailable(err)
	}
	return seq, next, nil
}

// KeyChanges returns at most limit changes after sequence after, in
// order, each with its key's current record. Errors wrap
// keys.ErrUnavailable.
func (c *Cluster) KeyChanges(ctx context.Context, after int64, limit int) ([]keys.Change, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := c.ensureReady(ctx); err != nil {
		return nil, unavailable(err)
	}
	// The record carries the cluster's last_used_at (usage.go), which
	// the stored record leaves out, so a new mirror learns it with the key.
	rows, err := c.pool.Query(ctx, `SELECT e.seq, e.key_id, e.type, e.actor, e.at, e.detail,
			CASE WHEN k.last_used_at IS NULL THEN k.record
				ELSE jsonb_set(k.record, '{last_used_at}', to_jsonb(k.last_used_at)) END
		FROM apiwarden_key_events e JOIN apiwarden_keys k ON k.id = e.key_id
		WHERE e.seq > $1 ORDER BY e.seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	var out []keys.Change
	for rows.Next() {
		var ch keys.Change
		var typ string
		if err := rows.Scan(&ch.Seq, &ch.Event.KeyID, &typ, &ch.Event.Actor, &ch.Event.At, &ch.Event.Detail, &ch.Record); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		ch.Event.Type = keys.EventType(typ)
		ch.Event.At = ch.Event.At.UTC()
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// nextSeq takes the next change sequence. The row stays locked until the
// transaction ends, which is what keeps sequences gapless and in commit
// order; it also queues the NOTIFY, which PostgreSQL sends on commit.
func nextSeq(ctx context.Context, tx pgx.Tx) (int64, error) {
	var seq int64
	if err := tx.QueryRow(ctx, "UPDATE apiwarden_key_changes SET last_seq = last_seq + 1 RETURNING last_seq").Scan(&seq); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", KeysChannel, strconv.FormatInt(seq, 10)); err != nil {
		return 0, err
	}
	return seq, nil
}

func writeEvent(ctx context.Context, tx pgx.Tx, seq int64, ev keys.Event) error {
	_, err := tx.Exec(ctx, "INSERT INTO apiwarden_key_events (seq, key_id, type, actor, at, detail) VALUES ($1, $2, $3, $4, $5, $6)",
		seq, ev.KeyID, string(ev.Type), ev.Actor, ev.At, ev.Detail)
	return err
}

// unavailable marks err as "the system of record did not take the call".
func unavailable(err error) error {
	if errors.Is(err, keys.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", keys.ErrUnavailable, err)
}
