package alerting

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
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

// NewStoreState keeps alerts in the buckets alerts and alert_history of
// the data file. It is not Shared: one evaluator owns the file. bbolt
// runs one Update at a time, and View sees the last committed one.
func NewStoreState(s *store.Store) StateStore { return storeState{s} }

type storeState struct{ st *store.Store }

func (storeState) Shared() bool { return false }

func (s storeState) View(_ context.Context, fn func(StateReader) error) error {
	return s.st.View(func(tx *store.Tx) error { return fn(storeTx{tx}) })
}

func (s storeState) Update(_ context.Context, fn func(StateWriter) error) error {
	return s.st.Update(func(tx *store.Tx) error { return fn(storeTx{tx}) })
}

// storeTx reads and writes the buckets in one bbolt transaction.
type storeTx struct{ tx *store.Tx }

func (s storeTx) Save(c Changes) error {
	alerts, err := s.tx.MustBucket(store.BucketAlerts)
	if err != nil {
		return err
	}
	history, err := s.tx.MustBucket(store.BucketAlertHistory)
	if err != nil {
		return err
	}
	// Keep the bucket's sequence at or above the ids handed out, so a
	// restart never reuses an id.
	for alerts.Sequence() < c.Seq {
		if _, err := alerts.NextSequence(); err != nil {
			return err
		}
	}
	for i := range c.Put {
		v, err := json.Marshal(&c.Put[i])
		if err != nil {
			return err
		}
		if err := alerts.Put([]byte(c.Put[i].ID), v); err != nil {
			return err
		}
	}
	for _, id := range c.Deleted {
		if err := alerts.Delete([]byte(id)); err != nil {
			return err
		}
	}
	for i := range c.Transitions {
		seq, err := history.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(&c.Transitions[i])
		if err != nil {
			return err
		}
		if err := history.Put(historyKey(c.Transitions[i].At, seq), v); err != nil {
			return err
		}
	}
	return nil
}

func historyKey(at time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func (s storeTx) Load(resolvedSince time.Time) (Snapshot, error) {
	b, err := s.tx.MustBucket(store.BucketAlerts)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Seq: b.Sequence()}
	err = b.ForEach(func(k, v []byte) error {
		var a Alert
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("alert %s: %w", k, err)
		}
		snap.Seq = max(snap.Seq, idSeq(a.ID))
		switch {
		case a.State.open():
			snap.Open = append(snap.Open, a)
		case !a.ResolvedAt.Before(resolvedSince):
			snap.Resolved = append(snap.Resolved, a)
		}
		return nil
	})
	return snap, err
}

func (s storeTx) Get(id string) (Alert, error) {
	b, err := s.tx.MustBucket(store.BucketAlerts)
	if err != nil {
		return Alert{}, err
	}
	v := b.Get([]byte(id))
	if v == nil {
		return Alert{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var a Alert
	return a, json.Unmarshal(v, &a)
}

func (s storeTx) List(q Query) ([]Alert, error) {
	b, err := s.tx.MustBucket(store.BucketAlerts)
	if err != nil {
		return nil, err
	}
	var out []Alert
	err = b.ForEach(func(k, v []byte) error {
		var a Alert
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("alert %s: %w", k, err)
		}
		if q.Match(&a) {
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return newestFirst(out, q.Limit), nil
}

// newestFirst sorts alerts by ActiveAt, newest first (then by id), and
// keeps at most limit of them when limit > 0.
func newestFirst(list []Alert, limit int) []Alert {
	slices.SortFunc(list, func(a, b Alert) int {
		if c := b.ActiveAt.Compare(a.ActiveAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(list) > limit {
		list = list[:limit]
	}
	return list
}

func (s storeTx) History(a *Alert) ([]Transition, error) {
	b, err := s.tx.MustBucket(store.BucketAlertHistory)
	if err != nil {
		return nil, err
	}
	var out []Transition
	c := b.Cursor()
	for k, v := c.Seek(historyKey(a.ActiveAt, 0)); k != nil; k, v = c.Next() {
		if a.State == StateResolved && int64(binary.BigEndian.Uint64(k)) > a.ResolvedAt.UnixNano() {
			break
		}
		if !bytes.Contains(v, []byte(`"alert_id":"`+a.ID+`"`)) {
			continue
		}
		var t Transition
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, err
		}
		if t.AlertID == a.ID {
			out = append(out, t)
		}
	}
	return out, nil
}

func (s storeTx) Cleanup(cutoff time.Time) (int, error) {
	alerts, err := s.tx.MustBucket(store.BucketAlerts)
	if err != nil {
		return 0, err
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
		return 0, err
	}
	history, err := s.tx.MustBucket(store.BucketAlertHistory)
	if err != nil {
		return 0, err
	}
	end := historyKey(cutoff, 0)
	var oldHistory [][]byte
	c := history.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		oldHistory = append(oldHistory, bytes.Clone(k))
	}
	for _, k := range old {
		if err := alerts.Delete(k); err != nil {
			return 0, err
		}
	}
	for _, k := range oldHistory {
		if err := history.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(old) + len(oldHistory), nil
}
