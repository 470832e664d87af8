package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/store"
)

// fileAlert is one alert of the data file with its history.
type fileAlert struct {
	alert   alerting.Alert
	history []alerting.Transition
}

// readFileAlerts reads every alert of the data file (open and resolved)
// with its history, oldest first, and the highest alert sequence number
// the file handed out. A data file without alert buckets has none.
func readFileAlerts(ctx context.Context, src *store.Store) ([]fileAlert, uint64, error) {
	var out []fileAlert
	var seq uint64
	err := alerting.NewStoreState(src).View(ctx, func(r alerting.StateReader) error {
		snap, err := r.Load(time.Time{})
		if err != nil {
			return err
		}
		seq = snap.Seq
		for _, a := range append(snap.Resolved, snap.Open...) {
			h, err := r.History(&a)
			if err != nil {
				return fmt.Errorf("alert %s: history: %w", a.ID, err)
			}
			out = append(out, fileAlert{alert: a, history: h})
		}
		return nil
	})
	if errors.Is(err, store.ErrBucketMissing) {
		return nil, 0, nil
	}
	slices.SortFunc(out, func(a, b fileAlert) int {
		if c := a.alert.ActiveAt.Compare(b.alert.ActiveAt); c != 0 {
			return c
		}
		return cmp.Compare(a.alert.ID, b.alert.ID)
	})
	return out, seq, err
}

// alerts is the "alerts" step: every alert of the data file with its
// history, one transaction per alert under the lock the cluster's
// evaluators take (AlertStore.Update), so a running leader's next pass
// reads what the import wrote; the alert id sequence is raised to the
// file's first, so the cluster never hands out an imported id.
func (im *importer) alerts(ctx context.Context) (StepResult, error) {
	var res StepResult
	list, seq, err := readFileAlerts(ctx, im.src)
	if err != nil {
		return res, err
	}
	open, transitions := 0, 0
	for _, fa := range list {
		if fa.alert.State != alerting.StateResolved {
			open++
		}
		transitions += len(fa.history)
	}
	im.progress("alerts: %d in the data file (%d open, %d resolved), %d history transitions",
		len(list), open, len(list)-open, transitions)
	// The sequence first: an alert a running leader opens meanwhile gets
	// an id above the file's, never one an imported alert is about to take.
	raised, err := im.raiseAlertSeq(ctx, seq)
	if err != nil {
		return res, fmt.Errorf("alert id sequence: %w", err)
	}
	if raised {
		im.progress("alerts: id sequence raised to %d, the data file's", seq)
	}
	for i, fa := range list {
		outcome, added, err := im.importAlert(ctx, fa)
		if err != nil {
			return res, fmt.Errorf("alert %s: %w", fa.alert.ID, err)
		}
		switch outcome.kind {
		case keyImported:
			res.Imported++
		case keySame:
			res.Skipped++
		case keyConflict:
			res.Conflicts = append(res.Conflicts, outcome.conflict)
		case keyReplaced:
			res.Replaced++
		}
		if outcome.kind != keyConflict {
			res.EventsImported += added
			res.EventsSkipped += len(fa.history) - added
		}
		if done := i + 1; done%im.opts.ProgressEvery == 0 && done < len(list) {
			im.progress("alerts: %d/%d (imported %d, skipped %d, conflicts %d)", done, len(list), res.Imported, res.Skipped, len(res.Conflicts))
		}
	}
	im.progress("alerts: imported %d, replaced %d, skipped %d (the same in the cluster), conflicts %d; history: imported %d, skipped %d",
		res.Imported, res.Replaced, res.Skipped, len(res.Conflicts), res.EventsImported, res.EventsSkipped)
	res.Notes = append(res.Notes, "history of alerts the data file no longer holds (pending ones that cleared, or past retention) is not imported")
	return res, nil
}

// alertOutcome is what importing one alert did; conflict names the alert
// (and the cluster's open alert of its fingerprint) for the report.
type alertOutcome struct {
	kind     keyOutcome
	conflict string
}

// importAlert copies one alert and the transitions of its history the
// cluster lacks, in one transaction (read-only and without the lock in a
// dry run). The alert is the same when the cluster holds its id with
// equal contents; it conflicts when the cluster holds its id with other
// contents, or when it is open and the cluster has another open alert of
// its fingerprint (the database allows one). With Force the data file's
// alert replaces the cluster's, and that other open alert is resolved by
// the import first, with a transition saying so.
func (im *importer) importAlert(ctx context.Context, fa fileAlert) (alertOutcome, int, error) {
	a := fa.alert
	raw, err := json.Marshal(&a)
	if err != nil {
		return alertOutcome{}, 0, err
	}
	var outcome alertOutcome
	var added int
	opts, lock := pgx.TxOptions{}, true
	if im.opts.DryRun {
		opts, lock = pgx.TxOptions{AccessMode: pgx.ReadOnly}, false
	}
	err = im.c.AlertStore().run(ctx, opts, lock, func(t alertTx) error {
		var same bool
		err := t.tx.QueryRow(t.ctx, "SELECT alert = $2::jsonb FROM apiwarden_alerts WHERE id = $1", a.ID, string(raw)).Scan(&same)
		exists := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var rival *alerting.Alert
		if a.State != alerting.StateResolved && !same {
			if rival, err = openRival(t, &a); err != nil {
				return err
			}
		}
		switch {
		case !exists && rival == nil:
			outcome.kind = keyImported
		case same:
			outcome.kind = keySame
		case !im.opts.Force:
			outcome.kind, outcome.conflict = keyConflict, a.ID
			if rival != nil {
				outcome.conflict += " (its rule and subject are open in the cluster as " + rival.ID + ")"
			}
			return nil
		default:
			outcome.kind = keyReplaced
		}
		have, err := t.History(&a)
		if err != nil {
			return err
		}
		missing := lacking(have, fa.history, transitionIDOf)
		added = len(missing)
		if im.opts.DryRun {
			return nil
		}
		c := alerting.Changes{Transitions: missing}
		if outcome.kind != keySame {
			c.Put = append(c.Put, a)
		}
		if rival != nil {
			r, tr := resolvedByImport(*rival, a.ID, im.opts.Now())
			c.Put = append(c.Put, r)
			c.Transitions = append(c.Transitions, tr)
		}
		if len(c.Put)+len(c.Transitions) == 0 {
			return nil
		}
		return t.Save(c)
	})
	return outcome, added, err
}

// openRival returns the cluster's open alert of a's fingerprint other
// than a itself, or nil.
func openRival(t alertTx, a *alerting.Alert) (*alerting.Alert, error) {
	found, err := t.alerts("SELECT alert FROM apiwarden_alerts WHERE fingerprint = $1 AND state <> 'resolved' AND id <> $2",
		a.Fingerprint, a.ID)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return &found[0], nil
}

// resolvedByImport resolves the cluster's open alert r, which a forced
// import replaces by the data file's alert id, as a person resolving it
// would; receivers are not told (the import runs no notifiers).
func resolvedByImport(r alerting.Alert, id string, now time.Time) (alerting.Alert, alerting.Transition) {
	now = now.UTC()
	tr := alerting.Transition{AlertID: r.ID, Fingerprint: r.Fingerprint, Rule: r.Rule, At: now,
		From: r.State, To: alerting.StateResolved, Actor: importActor,
		Note: "replaced by the data file's open alert " + id + " (cluster import -force)"}
	r.State, r.ResolvedAt, r.ResolvedBy = alerting.StateResolved, now, importActor
	return r, tr
}

// transitionID identifies a history transition well enough to tell
// whether the cluster has it: history rows have no key of their own, and
// every field of a transition, its time to the nanosecond (kept in the
// row's JSON), is what the data file recorded.
type transitionID struct {
	alertID, fingerprint, rule, from, to, actor, note string
	at                                                int64 // unix nanoseconds
}

func transitionIDOf(t alerting.Transition) transitionID {
	return transitionID{alertID: t.AlertID, fingerprint: t.Fingerprint, rule: t.Rule, from: string(t.From),
		to: string(t.To), actor: t.Actor, note: t.Note, at: t.At.UnixNano()}
}

// raiseAlertSeq raises the cluster's alert id sequence to seq, the data
// file's highest, when it is lower, and reports whether it was (or, in a
// dry run, would be).
func (im *importer) raiseAlertSeq(ctx context.Context, seq uint64) (bool, error) {
	if seq == 0 {
		return false, nil
	}
	var raised bool
	opts, lock := pgx.TxOptions{}, true
	if im.opts.DryRun {
		opts, lock = pgx.TxOptions{AccessMode: pgx.ReadOnly}, false
	}
	err := im.c.AlertStore().run(ctx, opts, lock, func(t alertTx) error {
		var have int64
		if err := t.tx.QueryRow(t.ctx, "SELECT last_value FROM apiwarden_alert_seq").Scan(&have); err != nil || uint64(have) >= seq {
			return err
		}
		raised = true
		if im.opts.DryRun {
			return nil
		}
		return t.Save(alerting.Changes{Seq: seq})
	})
	return raised, err
}
