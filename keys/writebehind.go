package keys

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// maxPendingEvents bounds the denial events waiting to be written; past
// it, new denial classes are counted but not recorded until the next flush.
const maxPendingEvents = 10_000

// writeBehind collects what the request path learns about keys
// (last_used_at, denials, expiry) and lets Run write it in one
// transaction per interval, never one bbolt write per request.
type writeBehind struct {
	mu       sync.Mutex
	lastUsed map[string]time.Time
	events   map[eventClass]*Event
	dropped  int
}

type eventClass struct {
	keyID string
	typ   EventType
}

func (w *writeBehind) init() {
	w.lastUsed = make(map[string]time.Time)
	w.events = make(map[eventClass]*Event)
}

func (w *writeBehind) touch(id string, at time.Time) {
	w.mu.Lock()
	if at.After(w.lastUsed[id]) {
		w.lastUsed[id] = at
	}
	w.mu.Unlock()
}

func (w *writeBehind) pendingLastUsed(id string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.lastUsed[id]
	return t, ok
}

// event queues an event of keyID, or counts it into the one of its type
// queued already; expiry is an "expired" event's (Event.expiry).
func (w *writeBehind) event(keyID string, typ EventType, at time.Time, detail string, expiry time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := eventClass{keyID, typ}
	if ev, ok := w.events[c]; ok {
		ev.Count++
		return
	}
	if len(w.events) >= maxPendingEvents {
		w.dropped++
		return
	}
	w.events[c] = &Event{KeyID: keyID, Type: typ, Actor: "system", At: at.UTC(), Detail: detail, Count: 1, expiry: expiry}
}

// expiredOnce queues the "expired" event the first time an expired key is
// presented to this cached identity.
func (w *writeBehind) expiredOnce(id *Identity, now time.Time) {
	if !id.expiredQueued.Swap(true) {
		w.event(id.ID, EventExpired, now, "presented after expires_at", id.ExpiresAt)
	}
}

func (w *writeBehind) take() (map[string]time.Time, map[eventClass]*Event, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	lu, ev, dropped := w.lastUsed, w.events, w.dropped
	w.init()
	w.dropped = 0
	return lu, ev, dropped
}

// putBack returns a batch that failed to commit, so a full disk or a
// closed store loses nothing that a later flush can still write.
func (w *writeBehind) putBack(lu map[string]time.Time, ev map[eventClass]*Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, t := range lu {
		if t.After(w.lastUsed[id]) {
			w.lastUsed[id] = t
		}
	}
	for c, e := range ev {
		if cur, ok := w.events[c]; ok {
			cur.Count += e.Count
		} else if len(w.events) < maxPendingEvents {
			w.events[c] = e
		}
	}
}

// RecordDenial queues an audit event for a request the key was refused
// for (EventIPDenied, EventOriginDenied, EventScopeDenied). Denials of one
// class are aggregated per flush interval. It never blocks on the disk.
func (s *Service) RecordDenial(now time.Time, keyID string, typ EventType, detail string) {
	s.behind.event(keyID, typ, now, detail, time.Time{})
}

// Flush writes what the request path has queued. Run calls it on every
// interval and once more when stopping. In cluster mode it then shares
// what it wrote with the other instances through the system of record
// and brings theirs into the mirror (usage.go); a failure there is logged
// and retried on the next flush, and does not make Flush fail. It returns
// the error of writing the store, after which the batch waits for the
// next flush.
func (s *Service) Flush() error {
	lastUsed, events, dropped := s.behind.take()
	if dropped > 0 {
		s.log.Warn("audit events dropped: too many distinct denials in one interval", "dropped", dropped)
	}
	var shared []SharedEvent
	if len(lastUsed) > 0 || len(events) > 0 {
		var err error
		if shared, err = s.writeBatch(lastUsed, events); err != nil {
			s.behind.putBack(lastUsed, events)
			return err
		}
	}
	if s.records != nil {
		s.shareUsage(lastUsed, shared)
	}
	return nil
}

// writeBatch writes one flush's last-used times and events to the store
// in one transaction. In cluster mode each event is written under its
// shared identity (usage.go), which writeBatch returns for the merge.
func (s *Service) writeBatch(lastUsed map[string]time.Time, events map[eventClass]*Event) ([]SharedEvent, error) {
	var flushSeq int64
	if s.records != nil {
		flushSeq = s.usage.nextFlush()
		// PostgreSQL keeps microseconds: every instance shows one time.
		for id, t := range lastUsed {
			lastUsed[id] = t.Truncate(time.Microsecond)
		}
	}
	var shared []SharedEvent
	err := s.store.Update(func(tx *store.Tx) error {
		shared = shared[:0]
		if err := writeLastUsed(tx, lastUsed); err != nil {
			return err
		}
		for _, ev := range events {
			if ev.Type == EventExpired {
				rec, err := getRecord(tx, ev.KeyID)
				if err != nil || rec.ExpiryRecorded {
					continue
				}
				rec.ExpiryRecorded = true
				if err := putRecord(tx, rec); err != nil {
					return err
				}
				ev.Count = 0
			}
			if s.records == nil {
				if err := appendEvent(tx, *ev); err != nil {
					return err
				}
				continue
			}
			// The mirror's copy and the one pulled back need the same
			// time to have one bbolt key.
			sev := SharedEvent{Origin: s.usage.origin, FlushSeq: flushSeq, Event: *ev, Expiry: ev.expiry.UTC()}
			sev.At = sev.At.Truncate(time.Microsecond)
			if err := putSharedEvent(tx, sev); err != nil {
				return err
			}
			shared = append(shared, sev)
		}
		return nil
	})
	return shared, err
}

// writeLastUsed moves each key's last_used_at forward to the time given.
func writeLastUsed(tx *store.Tx, lastUsed map[string]time.Time) error {
	for id, t := range lastUsed {
		rec, err := getRecord(tx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if rec.LastUsedAt != nil && !t.After(*rec.LastUsedAt) {
			continue
		}
		t := t.UTC()
		rec.LastUsedAt = &t
		if err := putRecord(tx, rec); err != nil {
			return err
		}
	}
	return nil
}

// Run flushes the write-behind buffer every FlushInterval until ctx ends
// or Stop is called, then flushes once more and returns that flush's
// error. A call while Run is active returns an error wrapping
// lifecycle.ErrAlreadyRunning; a call after Stop, or after Run has
// returned, returns nil at once.
func (s *Service) Run(ctx context.Context) error {
	return s.life.Run("keys", func(stop <-chan struct{}) error {
		t := time.NewTicker(s.flushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := s.Flush(); err != nil {
					s.log.Error("writing key usage", "err", err)
				}
			case <-ctx.Done():
				return s.Flush()
			case <-stop:
				return s.Flush()
			}
		}
	})
}

// Stop ends Run and waits for its last flush; when Run was never started,
// Stop makes that flush itself (and a later Run returns at once). It is
// safe to call twice and from several goroutines; every call returns
// after the last flush.
func (s *Service) Stop() {
	s.life.Stop(func() {
		if err := s.Flush(); err != nil {
			s.log.Error("final write of key usage failed", "err", err)
		}
	})
}

// Close stops the background cache goroutines. Call it after Run ended.
func (s *Service) Close() {
	s.cache.Close()
}
