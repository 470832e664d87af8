package alerting

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// Storage layout (buckets owned by this package):
//
//	alerts         alert id -> Alert (JSON); its sequence numbers alert ids
//	alert_history  unix nanos (8 bytes BE) + sequence (8 bytes BE) -> Transition (JSON)
//
// Every open alert is written on each transition, so the store always
// holds what the evaluator holds, give or take the value and text of the
// latest pass. A pending alert that returns to inactive is deleted; its
// transitions stay in the history until the retention removes them.

// save writes alerts, deletes ids and appends transitions in one
// transaction. It needs mu (it reads e.seq).
func (e *Evaluator) save(put []Alert, deleted []string, trs []Transition) error {
	err := e.store.Update(func(tx *store.Tx) error {
		alerts, err := tx.MustBucket(store.BucketAlerts)
		if err != nil {
			return err
		}
		history, err := tx.MustBucket(store.BucketAlertHistory)
		if err != nil {
			return err
		}
		// Keep the bucket's sequence at or above the ids handed out, so a
		// restart never reuses an id.
		for alerts.Sequence() < e.seq {
			if _, err := alerts.NextSequence(); err != nil {
				return err
			}
		}
		for i := range put {
			v, err := json.Marshal(&put[i])
			if err != nil {
				return err
			}
			if err := alerts.Put([]byte(put[i].ID), v); err != nil {
				return err
			}
		}
		for _, id := range deleted {
			if err := alerts.Delete([]byte(id)); err != nil {
				return err
			}
		}
		for i := range trs {
			seq, err := history.NextSequence()
			if err != nil {
				return err
			}
			v, err := json.Marshal(&trs[i])
			if err != nil {
				return err
			}
			if err := history.Put(historyKey(trs[i].At, seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("alerting: save alerts: %w", err)
	}
	return nil
}

func historyKey(at time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// restore loads the open alerts and the cool-downs still running at now.
func (e *Evaluator) restore(now time.Time) error {
	var orphans []Alert
	var trs []Transition
	err := e.store.View(func(tx *store.Tx) error {
		b, err := tx.MustBucket(store.BucketAlerts)
		if err != nil {
			return err
		}
		e.seq = b.Sequence()
		return b.ForEach(func(k, v []byte) error {
			var a Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alert %s: %w", k, err)
			}
			if i := strings.LastIndexByte(a.ID, '-'); i >= 0 {
				if n, err := strconv.ParseUint(a.ID[i+1:], 10, 64); err == nil {
					e.seq = max(e.seq, n)
				}
			}
			fp, err := strconv.ParseUint(a.Fingerprint, 16, 64)
			if err != nil {
				return fmt.Errorf("alert %s: bad fingerprint %q", a.ID, a.Fingerprint)
			}
			r := e.byName[a.Rule]
			switch {
			case a.State.open() && r == nil:
				trs = append(trs, resolveByHand(&a, now, "system", "rule no longer configured"))
				orphans = append(orphans, a)
			case a.State.open():
				if a.Labels == nil {
					a.Labels = map[string]string{}
				}
				e.active[fp] = &tracked{alert: a, rule: r}
			case r != nil && r.Cooldown > 0:
				if until := a.ResolvedAt.Add(r.Cooldown); until.After(now) && until.After(e.cooldown[fp]) {
					e.cooldown[fp] = until
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("alerting: restore alerts: %w", err)
	}
	if len(orphans) > 0 {
		e.log.Info("resolved alerts of rules no longer configured", "alerts", len(orphans))
		return e.save(orphans, nil, trs)
	}
	return nil
}

// load reads one alert from the store.
func (e *Evaluator) load(id string) (Alert, error) {
	var a Alert
	found := false
	err := e.store.View(func(tx *store.Tx) error {
		b, err := tx.MustBucket(store.BucketAlerts)
		if err != nil {
			return err
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &a)
	})
	switch {
	case err != nil:
		return Alert{}, fmt.Errorf("alerting: read alert %s: %w", id, err)
	case !found:
		return Alert{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return a, nil
}

// Query selects alerts for List. Empty fields select everything.
type Query struct {
	States      []State
	Severities  []Severity
	Types       []RuleType
	Rule        string
	SubjectKind SubjectKind
	Subject     string // the subject value, e.g. a key id
	// Acknowledged, when set, keeps only alerts that are (or are not)
	// acknowledged.
	Acknowledged *bool
	// Limit caps the answer; 0 means no cap.
	Limit int
}

func (q *Query) match(a *Alert) bool {
	switch {
	case len(q.States) > 0 && !slices.Contains(q.States, a.State),
		len(q.Severities) > 0 && !slices.Contains(q.Severities, a.Severity),
		len(q.Types) > 0 && !slices.Contains(q.Types, a.Type),
		q.Rule != "" && q.Rule != a.Rule,
		q.SubjectKind != "" && q.SubjectKind != a.Subject.Kind,
		q.Subject != "" && q.Subject != a.Subject.Value,
		q.Acknowledged != nil && *q.Acknowledged != a.Acknowledged():
		return false
	}
	return true
}

// List returns the alerts that match q, open and resolved (within the
// retention), newest first.
func (e *Evaluator) List(q Query) ([]Alert, error) {
	e.mu.Lock()
	open := make(map[string]Alert, len(e.active))
	for _, t := range e.active {
		open[t.alert.ID] = t.alert.clone()
	}
	e.mu.Unlock()

	var out []Alert
	err := e.store.View(func(tx *store.Tx) error {
		b, err := tx.MustBucket(store.BucketAlerts)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			if _, ok := open[string(k)]; ok {
				return nil // the memory copy is newer
			}
			var a Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alert %s: %w", k, err)
			}
			if q.match(&a) {
				out = append(out, a)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("alerting: list alerts: %w", err)
	}
	for _, a := range open {
		if q.match(&a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int {
		if c := b.ActiveAt.Compare(a.ActiveAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// History returns the transitions of one alert, oldest first, or
// ErrNotFound.
func (e *Evaluator) History(id string) ([]Transition, error) {
	a, err := e.Get(id)
	if err != nil {
		return nil, err
	}
	var out []Transition
	err = e.store.View(func(tx *store.Tx) error {
		b, err := tx.MustBucket(store.BucketAlertHistory)
		if err != nil {
			return err
		}
		c := b.Cursor()
		from := historyKey(a.ActiveAt, 0)
		for k, v := c.Seek(from); k != nil; k, v = c.Next() {
			if a.State == StateResolved && int64(binary.BigEndian.Uint64(k)) > a.ResolvedAt.UnixNano() {
				break
			}
			if !bytes.Contains(v, []byte(`"alert_id":"`+id+`"`)) {
				continue
			}
			var t Transition
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			if t.AlertID == id {
				out = append(out, t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("alerting: read history of %s: %w", id, err)
	}
	return out, nil
}

// Cleanup removes resolved alerts and history entries older than the
// retention at now, and forgets cool-downs that have ended. It returns how
// many records it removed. The evaluation loop calls it hourly.
func (e *Evaluator) Cleanup(now time.Time) (int, error) {
	cutoff := now.Add(-e.retain)
	removed := 0
	err := e.store.Update(func(tx *store.Tx) error {
		alerts, err := tx.MustBucket(store.BucketAlerts)
		if err != nil {
			return err
		}
		var old [][]byte
		err = alerts.ForEach(func(k, v []byte) error {
			var a struct {
				State      State     `json:"state"`
				ResolvedAt time.Time `json:"resolved_at"`
			}
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alert %s: %w", k, err)
			}
			if a.State == StateResolved && a.ResolvedAt.Before(cutoff) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		history, err := tx.MustBucket(store.BucketAlertHistory)
		if err != nil {
			return err
		}
		end := historyKey(cutoff, 0)
		var oldHistory [][]byte
		c := history.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			oldHistory = append(oldHistory, bytes.Clone(k))
		}
		for _, k := range old {
			if err := alerts.Delete(k); err != nil {
				return err
			}
		}
		for _, k := range oldHistory {
			if err := history.Delete(k); err != nil {
				return err
			}
		}
		removed = len(old) + len(oldHistory)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("alerting: cleanup: %w", err)
	}
	e.mu.Lock()
	e.lastCleanup = now
	for fp, until := range e.cooldown {
		if !until.After(now) {
			delete(e.cooldown, fp)
		}
	}
	e.mu.Unlock()
	return removed, nil
}
