package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/apiwarden/apiwarden/keys"
)

// MergeUsage merges one instance's write-behind into the cluster: last-used
// times with "the latest wins" and denial events once per identity, in one
// transaction under the next usage sequence (see keys.SystemOfRecord). A
// merge that changes nothing, such as the retry of one that committed,
// rolls back and leaves the sequence as it was. Merges from all instances
// run one at a time, queued on the usage counter's row; they never touch
// the key change sequence, so no mirror resyncs its keys for them. Errors
// wrap keys.ErrUnavailable.
func (c *Cluster) MergeUsage(ctx context.Context, batch keys.UsageBatch) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := c.ensureReady(ctx); err != nil {
		return unavailable(err)
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, "UPDATE apiwarden_key_usage SET last_seq = last_seq + 1 RETURNING last_seq").Scan(&seq); err != nil {
			return err
		}
		moved, err := mergeLastUsed(ctx, tx, seq, batch.LastUsed)
		if err != nil {
			return err
		}
		inserted, err := c.insertDenials(ctx, tx, seq, batch.Events)
		if err != nil {
			return err
		}
		if moved+inserted == 0 {
			return errNothingMerged
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothingMerged) {
		return unavailable(err)
	}
	return nil
}

// errNothingMerged rolls back a merge that changed nothing.
var errNothingMerged = errors.New("cluster: nothing to merge")

// mergeLastUsed moves last_used_at forward for the keys whose time in
// lastUsed is later, and returns how many moved.
func mergeLastUsed(ctx context.Context, tx pgx.Tx, seq int64, lastUsed map[string]time.Time) (int64, error) {
	if len(lastUsed) == 0 {
		return 0, nil
	}
	ids := make([]string, 0, len(lastUsed))
	times := make([]time.Time, 0, len(lastUsed))
	for id, t := range lastUsed {
		ids, times = append(ids, id), append(times, t)
	}
	tag, err := tx.Exec(ctx, `UPDATE apiwarden_keys k SET last_used_at = u.at, usage_seq = $1
		FROM unnest($2::text[], $3::timestamptz[]) AS u(id, at)
		WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)`, seq, ids, times)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// insertDenials inserts the events not inserted before, for keys the
// cluster has, and an "expired" event only when no instance recorded the
// same expiry, and returns how many it inserted.
func (c *Cluster) insertDenials(ctx context.Context, tx pgx.Tx, seq int64, events []keys.SharedEvent) (int64, error) {
	if len(events) == 0 {
		return 0, nil
	}
	n := len(events)
	origins, flushes := make([]int64, 0, n), make([]int64, 0, n)
	keyIDs, types, actors, details := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	ats, counts := make([]time.Time, 0, n), make([]int32, 0, n)
	expiries := make([]pgtype.Timestamptz, 0, n)
	for _, ev := range events {
		origins, flushes = append(origins, ev.Origin), append(flushes, ev.FlushSeq)
		keyIDs, types = append(keyIDs, ev.KeyID), append(types, string(ev.Type))
		actors, details = append(actors, ev.Actor), append(details, ev.Detail)
		ats, counts = append(ats, ev.At), append(counts, int32(min(ev.Count, 1<<31-1)))
		expiries = append(expiries, pgtype.Timestamptz{Time: ev.Expiry, Valid: !ev.Expiry.IsZero()})
	}
	// An "expired" event names the expiry it records (migration 014): a
	// second instance's event of the same expiry conflicts and is skipped.
	// That is the expiry the instance refused the key under when it says
	// (SharedEvent.Expiry), for the key's may have moved later since;
	// otherwise the key's, if the event is not older.
	tag, err := tx.Exec(ctx, `INSERT INTO apiwarden_key_denials
			(origin, flush_seq, key_id, type, seq, instance_id, actor, at, detail, count, expiry)
		SELECT e.origin, e.flush_seq, e.key_id, e.type, $1, $2, e.actor, e.at, e.detail, e.count,
			CASE WHEN e.type = 'expired' THEN coalesce(e.expiry, CASE WHEN e.at >= k.expires THEN k.expires END) END
		FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[], $10::integer[],
			$11::timestamptz[]) AS e(origin, flush_seq, key_id, type, actor, at, detail, count, expiry)
		JOIN (SELECT id, (record->>'expires_at')::timestamptz AS expires FROM apiwarden_keys) k ON k.id = e.key_id
		ON CONFLICT DO NOTHING`,
		seq, c.opts.InstanceID, origins, flushes, keyIDs, types, actors, ats, details, counts, expiries)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// UsageChanges returns what the usage merges after after (at most limit
// of them) changed, read from one snapshot. Errors wrap
// keys.ErrUnavailable.
func (c *Cluster) UsageChanges(ctx context.Context, after int64, limit int) (keys.UsageChanges, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := c.ensureReady(ctx); err != nil {
		return keys.UsageChanges{}, unavailable(err)
	}
	out := keys.UsageChanges{LastUsed: map[string]time.Time{}}
	err := pgx.BeginTxFunc(ctx, c.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT last_seq FROM apiwarden_key_usage").Scan(&out.Last); err != nil {
			return err
		}
		out.Seq = min(out.Last, after+int64(limit))
		if out.Seq <= after {
			return nil
		}
		rows, err := tx.Query(ctx, "SELECT id, last_used_at FROM apiwarden_keys WHERE usage_seq > $1 AND usage_seq <= $2", after, out.Seq)
		if err != nil {
			return err
		}
		var id string
		var at time.Time
		if _, err := pgx.ForEachRow(rows, []any{&id, &at}, func() error {
			out.LastUsed[id] = at.UTC()
			return nil
		}); err != nil {
			return err
		}
		out.Events, err = usageEvents(ctx, tx, after, out.Seq)
		return err
	})
	if err != nil {
		return keys.UsageChanges{}, unavailable(err)
	}
	return out, nil
}

// usageEvents reads the events the merges in (after, upTo] inserted.
func usageEvents(ctx context.Context, tx pgx.Tx, after, upTo int64) ([]keys.SharedEvent, error) {
	rows, err := tx.Query(ctx, `SELECT origin, flush_seq, key_id, type, actor, at, detail, count
		FROM apiwarden_key_denials WHERE seq > $1 AND seq <= $2 ORDER BY seq`, after, upTo)
	if err != nil {
		return nil, err
	}
	var out []keys.SharedEvent
	var ev keys.SharedEvent
	var typ string
	_, err = pgx.ForEachRow(rows, []any{&ev.Origin, &ev.FlushSeq, &ev.KeyID, &typ, &ev.Actor, &ev.At, &ev.Detail, &ev.Count}, func() error {
		ev.Type, ev.At = keys.EventType(typ), ev.At.UTC()
		out = append(out, ev)
		return nil
	})
	return out, err
}
