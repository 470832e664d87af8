package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/keys"
)

// importActor is the actor of the audit events an import writes itself.
const importActor = "cluster import"

// sharedEvent says whether an audit event of a data file belongs in the
// cluster's change log. Denial events are counted per instance and stay
// with it in cluster mode (the change log has no count), so they are not
// imported.
func sharedEvent(ev keys.Event) bool {
	switch ev.Type {
	case keys.EventIPDenied, keys.EventOriginDenied, keys.EventScopeDenied:
		return false
	}
	return true
}

// keyOutcome is what importing one key did.
type keyOutcome int

const (
	keyImported keyOutcome = iota
	keySame
	keyConflict
	keyReplaced
)

// keys is the "keys" step: every key of the data file with its audit
// events, one transaction per key.
func (im *importer) keys(ctx context.Context) (StepResult, error) {
	var res StepResult
	total, err := keys.CountStoredKeys(im.src)
	if err != nil {
		return res, err
	}
	im.progress("keys: %d in the data file", total)
	denials, done := 0, 0
	err = keys.ReadStoredKeys(im.src, func(k keys.StoredKey) error {
		var events []keys.Event
		for _, ev := range k.Events {
			if sharedEvent(ev) {
				ev.At = ev.At.UTC().Truncate(time.Microsecond) // PostgreSQL's precision
				events = append(events, ev)
			} else {
				denials++
			}
		}
		if len(k.Events) == 0 {
			// Every key is created with an event; a change needs one.
			events = append(events, keys.Event{KeyID: k.ID, Type: keys.EventCreated, Actor: importActor,
				At: k.CreatedAt.UTC().Truncate(time.Microsecond), Detail: "no audit events in the data file"})
		}
		outcome, added, err := im.importKey(ctx, k, events)
		if err != nil {
			return fmt.Errorf("key %s: %w", k.ID, err)
		}
		switch outcome {
		case keyImported:
			res.Imported++
		case keySame:
			res.Skipped++
		case keyConflict:
			res.Conflicts = append(res.Conflicts, k.ID)
		case keyReplaced:
			res.Replaced++
		}
		if outcome != keyConflict {
			res.EventsImported += added
			res.EventsSkipped += len(events) - added
		}
		if done++; done%im.opts.ProgressEvery == 0 && done < total {
			im.progress("keys: %d/%d (imported %d, skipped %d, conflicts %d)", done, total, res.Imported, res.Skipped, len(res.Conflicts))
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	im.progress("keys: imported %d, replaced %d, skipped %d (the same in the cluster), conflicts %d; events: imported %d, skipped %d",
		res.Imported, res.Replaced, res.Skipped, len(res.Conflicts), res.EventsImported, res.EventsSkipped)
	if denials > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf(
			"%d denial audit events not imported: in cluster mode each instance keeps its own", denials))
	}
	res.Notes = append(res.Notes, "last-used times not imported: in cluster mode each instance keeps its own")
	return res, nil
}

// importKey copies one key and the events of it the cluster lacks, in one
// transaction, each event a change of its own (the same sequence and
// NOTIFY as an admin write). It returns what it did (or would do, in a
// dry run) and how many events it added.
func (im *importer) importKey(ctx context.Context, k keys.StoredKey, events []keys.Event) (keyOutcome, int, error) {
	ctx, cancel := im.c.deadline(ctx)
	defer cancel()
	var outcome keyOutcome
	var added int
	query := "SELECT record = $2::jsonb FROM apiwarden_keys WHERE id = $1"
	if !im.opts.DryRun {
		query += " FOR UPDATE" // the lock admin writes take
	}
	body := func(tx pgx.Tx) error {
		var same bool
		err := tx.QueryRow(ctx, query, k.ID, string(k.Record)).Scan(&same)
		exists := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		missing := events
		if exists {
			if missing, err = missingEvents(ctx, tx, k.ID, events); err != nil {
				return err
			}
		}
		switch {
		case !exists:
			outcome = keyImported
		case same:
			outcome = keySame
		case !im.opts.Force:
			outcome = keyConflict
			return nil
		default:
			outcome = keyReplaced
		}
		added = len(missing)
		if im.opts.DryRun {
			return nil
		}
		return writeImportedKey(ctx, tx, k, outcome, missing)
	}
	mode := pgx.ReadWrite
	if im.opts.DryRun {
		mode = pgx.ReadOnly
	}
	err := pgx.BeginTxFunc(ctx, im.c.pool, pgx.TxOptions{AccessMode: mode}, body)
	return outcome, added, err
}

// eventID identifies an audit event well enough to tell whether the
// cluster has it: an event's fields at PostgreSQL's precision.
type eventID struct {
	typ, actor, detail string
	at                 int64 // unix microseconds
}

func idOf(ev keys.Event) eventID {
	return eventID{typ: string(ev.Type), actor: ev.Actor, detail: ev.Detail, at: ev.At.UnixMicro()}
}

// missingEvents returns the events of events the cluster does not have
// for key id (counting duplicates: two equal events need two rows).
func missingEvents(ctx context.Context, tx pgx.Tx, id string, events []keys.Event) ([]keys.Event, error) {
	rows, err := tx.Query(ctx, "SELECT type, actor, at, detail FROM apiwarden_key_events WHERE key_id = $1", id)
	if err != nil {
		return nil, err
	}
	var have []keys.Event
	for rows.Next() {
		var ev keys.Event
		var typ string
		if err := rows.Scan(&typ, &ev.Actor, &ev.At, &ev.Detail); err != nil {
			rows.Close()
			return nil, err
		}
		ev.Type = keys.EventType(typ)
		have = append(have, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return lacking(have, events, idOf), nil
}

// lacking returns the items of want that have lacks, items being equal
// when their ids are, counting duplicates: two equal items need two in
// have.
func lacking[T any, K comparable](have, want []T, id func(T) K) []T {
	count := map[K]int{}
	for _, v := range have {
		count[id(v)]++
	}
	var missing []T
	for _, v := range want {
		if k := id(v); count[k] > 0 {
			count[k]--
		} else {
			missing = append(missing, v)
		}
	}
	return missing
}

// writeImportedKey writes a key's record (a new key, or a replacement)
// and its missing events, each a change taken with nextSeq as admin
// writes take them. A replaced record gets an "updated" event of its own,
// the last change, so the audit trail says who replaced it.
func writeImportedKey(ctx context.Context, tx pgx.Tx, k keys.StoredKey, outcome keyOutcome, missing []keys.Event) error {
	if outcome == keyReplaced {
		missing = append(missing, keys.Event{KeyID: k.ID, Type: keys.EventUpdated, Actor: importActor,
			At: time.Now().UTC().Truncate(time.Microsecond), Detail: "record replaced by the data file's (cluster import -force)"})
	}
	if len(missing) == 0 {
		return nil
	}
	seqs := make([]int64, len(missing))
	for i := range missing {
		var err error
		if seqs[i], err = nextSeq(ctx, tx); err != nil {
			return err
		}
	}
	last := seqs[len(seqs)-1]
	var err error
	switch outcome {
	case keyImported:
		_, err = tx.Exec(ctx, "INSERT INTO apiwarden_keys (id, record, seq) VALUES ($1, $2, $3)", k.ID, string(k.Record), last)
	case keyReplaced:
		_, err = tx.Exec(ctx, "UPDATE apiwarden_keys SET record = $2, seq = $3, updated_at = now() WHERE id = $1", k.ID, string(k.Record), last)
	}
	if err != nil {
		return err
	}
	for i, ev := range missing {
		ev.KeyID = k.ID
		if err := writeEvent(ctx, tx, seqs[i], ev); err != nil {
			return err
		}
	}
	return nil
}
