package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/alerting"
)

// AlertStore keeps the cluster's alerts and their history in PostgreSQL
// (migration 005): the alerting.StateStore of every instance in cluster
// mode. It is Shared: the leader's passes and any instance's
// acknowledgements and resolves each run as one transaction holding the
// same transaction-level advisory lock, so each reads what the one
// before committed and none overwrites another. All methods are safe for
// concurrent use. Errors of PostgreSQL wrap alerting.ErrUnavailable.
type AlertStore struct{ c *Cluster }

var _ alerting.StateStore = (*AlertStore)(nil)

// AlertStore returns the cluster's alert store.
func (c *Cluster) AlertStore() *AlertStore { return &AlertStore{c} }

// alertsLockID is the advisory lock every Update holds ("alerts" in ASCII).
const alertsLockID int64 = 0x616c65727473

// Shared is true: other instances change the same alerts.
func (s *AlertStore) Shared() bool { return true }

// View runs fn in a read-only transaction, without the lock.
func (s *AlertStore) View(ctx context.Context, fn func(alerting.StateReader) error) error {
	return s.run(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly}, false, func(tx alertTx) error { return fn(tx) })
}

// Update runs fn in one transaction that first takes the alerts' advisory
// lock, and commits when fn returns nil. fn's errors are returned as
// they are; a failed commit wraps alerting.ErrUnavailable, and then the
// change may or may not have been made.
func (s *AlertStore) Update(ctx context.Context, fn func(alerting.StateWriter) error) error {
	return s.run(ctx, pgx.TxOptions{}, true, func(tx alertTx) error { return fn(tx) })
}

func (s *AlertStore) run(ctx context.Context, opts pgx.TxOptions, lock bool, fn func(alertTx) error) error {
	ctx, cancel := s.c.deadline(ctx)
	defer cancel()
	if err := s.c.ensureReady(ctx); err != nil {
		return alertsUnavailable(err)
	}
	err := pgx.BeginTxFunc(ctx, s.c.pool, opts, func(tx pgx.Tx) error {
		if lock {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", alertsLockID); err != nil {
				return alertsUnavailable(err)
			}
		}
		if err := fn(alertTx{ctx, tx}); err != nil {
			return changeError{err}
		}
		return nil
	})
	var ce changeError
	if errors.As(err, &ce) {
		return ce.err
	}
	if err != nil {
		return alertsUnavailable(err)
	}
	return nil
}

// alertsUnavailable marks err as "the alert store did not take the call".
func alertsUnavailable(err error) error {
	if errors.Is(err, alerting.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", alerting.ErrUnavailable, err)
}

// alertTx reads and writes the alert tables in one transaction. Its
// errors wrap alerting.ErrUnavailable, but for ErrNotFound.
type alertTx struct {
	ctx context.Context
	tx  pgx.Tx
}

// Load returns the open alerts, those resolved at or after
// resolvedSince, and the highest alert sequence number handed out.
func (t alertTx) Load(resolvedSince time.Time) (alerting.Snapshot, error) {
	var snap alerting.Snapshot
	var seq int64
	if err := t.tx.QueryRow(t.ctx, "SELECT last_value FROM apiwarden_alert_seq").Scan(&seq); err != nil {
		return snap, alertsUnavailable(err)
	}
	snap.Seq = uint64(seq)
	alerts, err := t.alerts("SELECT alert FROM apiwarden_alerts WHERE state <> 'resolved' OR resolved_at >= $1", resolvedSince)
	if err != nil {
		return snap, err
	}
	for _, a := range alerts {
		if a.State == alerting.StateResolved {
			snap.Resolved = append(snap.Resolved, a)
		} else {
			snap.Open = append(snap.Open, a)
		}
	}
	return snap, nil
}

// alerts runs a query that selects the alert column.
func (t alertTx) alerts(sql string, args ...any) ([]alerting.Alert, error) {
	return collectJSON[alerting.Alert](t, sql, args...)
}

// collectJSON runs a query that selects one jsonb column and decodes
// each row into a T.
func collectJSON[T any](t alertTx, sql string, args ...any) ([]T, error) {
	rows, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, alertsUnavailable(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		var raw []byte
		var v T
		if err := row.Scan(&raw); err != nil {
			return v, err
		}
		return v, json.Unmarshal(raw, &v)
	})
	if err != nil {
		return nil, alertsUnavailable(err)
	}
	return out, nil
}

// Get returns one alert, or an error wrapping alerting.ErrNotFound.
func (t alertTx) Get(id string) (alerting.Alert, error) {
	var raw []byte
	err := t.tx.QueryRow(t.ctx, "SELECT alert FROM apiwarden_alerts WHERE id = $1", id).Scan(&raw)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return alerting.Alert{}, fmt.Errorf("%w: %s", alerting.ErrNotFound, id)
	case err != nil:
		return alerting.Alert{}, alertsUnavailable(err)
	}
	var a alerting.Alert
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("cluster: alert %s: %w", id, err)
	}
	return a, nil
}

// List returns the alerts that match q, newest first, at most q.Limit
// when it is set. States and rule are selected in SQL, the rest with
// q.Match while reading, so the limit stops the read early.
func (t alertTx) List(q alerting.Query) ([]alerting.Alert, error) {
	states := make([]string, len(q.States))
	for i, st := range q.States {
		states[i] = string(st)
	}
	rows, err := t.tx.Query(t.ctx, `SELECT alert FROM apiwarden_alerts
		WHERE (cardinality($1::text[]) = 0 OR state = ANY($1)) AND ($2 = '' OR rule = $2)
		ORDER BY active_at DESC, id COLLATE "C"`, states, q.Rule)
	if err != nil {
		return nil, alertsUnavailable(err)
	}
	defer rows.Close()
	var out []alerting.Alert
	for rows.Next() {
		var raw []byte
		var a alerting.Alert
		if err := rows.Scan(&raw); err != nil {
			return nil, alertsUnavailable(err)
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("cluster: alert: %w", err)
		}
		if q.Match(&a) {
			out = append(out, a)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, alertsUnavailable(err)
	}
	return out, nil
}

// History returns the transitions of alert a, oldest first.
func (t alertTx) History(a *alerting.Alert) ([]alerting.Transition, error) {
	return collectJSON[alerting.Transition](t,
		"SELECT transition FROM apiwarden_alert_history WHERE alert_id = $1 ORDER BY at, seq", a.ID)
}

// Save writes c in one batch: deletions, then resolved alerts, then the
// others (so an alert resolved and one opened for its fingerprint never
// meet in the unique index), the transitions, and the sequence.
func (t alertTx) Save(c alerting.Changes) error {
	batch := &pgx.Batch{}
	if len(c.Deleted) > 0 {
		batch.Queue("DELETE FROM apiwarden_alerts WHERE id = ANY($1)", c.Deleted)
	}
	put := slices.Clone(c.Put)
	slices.SortStableFunc(put, func(a, b alerting.Alert) int {
		return boolRank(b.State == alerting.StateResolved) - boolRank(a.State == alerting.StateResolved)
	})
	for i := range put {
		a := &put[i]
		v, err := json.Marshal(a)
		if err != nil {
			return err
		}
		var resolvedAt any
		if !a.ResolvedAt.IsZero() {
			resolvedAt = a.ResolvedAt
		}
		batch.Queue(`INSERT INTO apiwarden_alerts (id, fingerprint, rule, state, active_at, resolved_at, alert)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, resolved_at = EXCLUDED.resolved_at,
				active_at = EXCLUDED.active_at, alert = EXCLUDED.alert`,
			a.ID, a.Fingerprint, a.Rule, string(a.State), a.ActiveAt, resolvedAt, string(v))
	}
	for i := range c.Transitions {
		v, err := json.Marshal(&c.Transitions[i])
		if err != nil {
			return err
		}
		batch.Queue("INSERT INTO apiwarden_alert_history (alert_id, at, transition) VALUES ($1, $2, $3)",
			c.Transitions[i].AlertID, c.Transitions[i].At, string(v))
	}
	if c.Seq > 0 {
		batch.Queue("SELECT setval('apiwarden_alert_seq', $1) WHERE $1 > (SELECT last_value FROM apiwarden_alert_seq)", int64(c.Seq))
	}
	if err := t.tx.SendBatch(t.ctx, batch).Close(); err != nil {
		return alertsUnavailable(err)
	}
	return nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Cleanup removes alerts resolved before cutoff and history older than
// it, and returns how many rows it removed.
func (t alertTx) Cleanup(cutoff time.Time) (int, error) {
	alerts, err := t.tx.Exec(t.ctx, "DELETE FROM apiwarden_alerts WHERE state = 'resolved' AND resolved_at < $1", cutoff)
	if err != nil {
		return 0, alertsUnavailable(err)
	}
	history, err := t.tx.Exec(t.ctx, "DELETE FROM apiwarden_alert_history WHERE at < $1", cutoff)
	if err != nil {
		return 0, alertsUnavailable(err)
	}
	return int(alerts.RowsAffected() + history.RowsAffected()), nil
}
