package keys

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// In cluster mode the write-behind (writebehind.go) also shares what it
// wrote: each flush writes the mirror as a single instance does, then
// merges the same last-used times and events into the system of record
// (pushUsage) and brings back what the other instances merged
// (pullUsage), into the mirror. Get, List and Events read the mirror
// only, as they do for a single instance: the request path (event ingest
// calls Get) and the admin views stay as they were, and work unchanged
// while the system of record is down, with what was last pulled.
//
// An event keeps one identity everywhere: the process that recorded it
// (origin, drawn at random when the Service is made), the number of the
// flush that wrote it, its key and its type. The system of record inserts
// each identity once, so a retried merge whose first try did commit adds
// nothing; the mirror stores each under a bbolt key made from that
// identity, so pulling back an event this instance wrote overwrites it
// with itself.

// SharedEvent is a write-behind audit event (a denial, an expiry) with
// the flush it was written in.
type SharedEvent struct {
	Origin   int64 // the process that recorded it
	FlushSeq int64 // the flush of that process that wrote it
	Event
	// Expiry is, for an "expired" event this process recorded, the
	// expires_at the key was refused under: the system of record records
	// one event an expiry, and the key's expiry may have moved later
	// before the merge. Zero in events pulled back, and where unknown.
	Expiry time.Time
}

// UsageBatch is what one or more flushes of a process merge into the
// system of record.
type UsageBatch struct {
	// LastUsed is the latest use of each key seen since the last merge.
	LastUsed map[string]time.Time
	Events   []SharedEvent
}

// UsageChanges is what the system of record merged after a usage
// sequence (UsageRecords.UsageChanges).
type UsageChanges struct {
	// Seq is the last merge these changes include; the next call passes
	// it as after.
	Seq int64
	// Last is the last merge the system of record has; a Last lower than
	// the after asked for means the database was replaced.
	Last int64
	// LastUsed holds the keys whose last use moved in those merges, with
	// their latest last use.
	LastUsed map[string]time.Time
	Events   []SharedEvent
}

// sharedEventSeqBit marks the bucket sequence part of a shared event's
// bbolt key (see eventKey): below replicatedEventSeq, far above the
// bucket's own NextSequence values.
const sharedEventSeqBit = 1 << 62

// sharedEventKey is the bbolt key of a shared event: the same on every
// mirror, for every write of it.
func sharedEventKey(ev SharedEvent) []byte {
	h := fnv.New64a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(ev.Origin))
	binary.BigEndian.PutUint64(b[8:], uint64(ev.FlushSeq))
	h.Write(b[:])
	h.Write([]byte(ev.Type))
	return eventKey(ev.KeyID, ev.At, sharedEventSeqBit|h.Sum64()&(sharedEventSeqBit-1))
}

func putSharedEvent(tx *store.Tx, ev SharedEvent) error {
	b, err := tx.MustBucket(store.BucketKeyEvents)
	if err != nil {
		return err
	}
	v, err := json.Marshal(ev.Event)
	if err != nil {
		return err
	}
	return b.Put(sharedEventKey(ev), v)
}

// usageOutbox holds what flushes wrote to the mirror and the system of
// record has not confirmed yet. It lives in memory: a process killed
// while the system of record is down loses it from the cluster's view
// (its mirror keeps it), as a crash loses one unflushed interval. Its lock serialises pushUsage and
// pullUsage too: a merge and the next one never overlap.
type usageOutbox struct {
	mu       sync.Mutex
	origin   int64
	flushSeq atomic.Int64
	lastUsed map[string]time.Time
	events   []SharedEvent
	failing  bool // the last push or pull failed; logged once until one succeeds

	pulledSeq atomic.Int64 // last usage merge the mirror has
	dropped   atomic.Int64 // events never merged: the outbox was full
}

func (o *usageOutbox) init() error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("keys: drawing the write-behind origin: %w", err)
	}
	o.origin = int64(binary.BigEndian.Uint64(b[:]) >> 1)
	o.lastUsed = make(map[string]time.Time)
	return nil
}

// nextFlush numbers a flush of this process.
func (o *usageOutbox) nextFlush() int64 { return o.flushSeq.Add(1) }

// queue adds what a flush wrote to the mirror. Events past maxPendingEvents
// waiting are dropped and counted: the mirror keeps them, the cluster
// never sees them. It needs mu.
func (o *usageOutbox) queue(lastUsed map[string]time.Time, events []SharedEvent) (dropped int) {
	for id, t := range lastUsed {
		if t.After(o.lastUsed[id]) {
			o.lastUsed[id] = t
		}
	}
	room := max(maxPendingEvents-len(o.events), 0)
	if len(events) > room {
		dropped = len(events) - room
		events = events[:room]
		o.dropped.Add(int64(dropped))
	}
	o.events = append(o.events, events...)
	return dropped
}

// UsageDropped returns how many denial events this process never merged
// into the system of record because too many were waiting while it was
// unreachable (more than 10,000). The mirror has them.
func (s *Service) UsageDropped() int64 { return s.usage.dropped.Load() }

// UsageSeq returns the last usage merge of the system of record the
// mirror has pulled (0 without one).
func (s *Service) UsageSeq() int64 { return s.usage.pulledSeq.Load() }

// shareUsage queues what a flush wrote to the mirror, merges everything
// waiting into the system of record and pulls what the other instances
// merged. A failure keeps what waits for the next flush; it is logged
// once, and its recovery too.
func (s *Service) shareUsage(lastUsed map[string]time.Time, events []SharedEvent) {
	o := &s.usage
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := o.queue(lastUsed, events); n > 0 {
		s.log.Warn("denial events not shared with the cluster: too many waiting while PostgreSQL is unreachable; this instance's mirror keeps them",
			"dropped", n, "dropped_total", o.dropped.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.writeTimeout)
	defer cancel()
	err := s.pushUsage(ctx)
	if err == nil {
		err = s.pullUsage(ctx)
	}
	switch {
	case err != nil && !o.failing:
		o.failing = true
		s.log.Warn("key usage not shared with the cluster; kept for the next flush", "err", err,
			"waiting_events", len(o.events), "waiting_last_used", len(o.lastUsed))
	case err == nil && o.failing:
		o.failing = false
		s.log.Info("key usage shared with the cluster again")
	}
}

// pushUsage merges what waits in the outbox. It needs o.mu.
func (s *Service) pushUsage(ctx context.Context) error {
	o := &s.usage
	if len(o.lastUsed) == 0 && len(o.events) == 0 {
		return nil
	}
	if err := s.records.MergeUsage(ctx, UsageBatch{LastUsed: o.lastUsed, Events: o.events}); err != nil {
		return fmt.Errorf("keys: merging usage: %w", err)
	}
	o.lastUsed = make(map[string]time.Time)
	o.events = nil
	return nil
}

// usagePullBatch is how many usage merges one round of pullUsage reads.
const usagePullBatch = 100

// usageSeqKey holds, in the meta bucket, the last usage merge pulled.
var usageSeqKey = []byte("keys_usage_seq")

// pullUsage brings the last-used times and events the cluster merged
// since the last pull into the mirror, a round of merges per bbolt
// transaction. It needs o.mu.
func (s *Service) pullUsage(ctx context.Context) error {
	o := &s.usage
	for {
		after := o.pulledSeq.Load()
		ch, err := s.records.UsageChanges(ctx, after, usagePullBatch)
		if err != nil {
			return fmt.Errorf("keys: pulling usage: %w", err)
		}
		if ch.Last < after {
			// Another database: read its merges from the start; the
			// writes are idempotent and last-used only moves forward.
			s.log.Warn("the cluster's usage merges are behind this mirror's (a restored or replaced database?): pulling them from the start", "mirror_usage_seq", after)
			o.pulledSeq.Store(0)
			continue
		}
		if ch.Seq <= after {
			return nil
		}
		if err := s.applyUsage(ch); err != nil {
			return fmt.Errorf("keys: pulling usage: %w", err)
		}
		o.pulledSeq.Store(ch.Seq)
		if ch.Seq >= ch.Last {
			return nil
		}
	}
}

// applyUsage writes pulled usage into the mirror in one transaction:
// last_used_at moves forward only, events land under their shared keys,
// and the pulled sequence is recorded with them.
func (s *Service) applyUsage(ch UsageChanges) error {
	return s.store.Update(func(tx *store.Tx) error {
		// A key not mirrored yet is skipped: its change brings
		// last_used_at along (SystemOfRecord.KeyChanges).
		if err := writeLastUsed(tx, ch.LastUsed); err != nil {
			return err
		}
		for _, ev := range ch.Events {
			if err := putSharedEvent(tx, ev); err != nil {
				return err
			}
			if ev.Type == EventExpired {
				if err := markExpiryRecorded(tx, ev); err != nil {
					return err
				}
			}
		}
		meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(usageSeqKey, binary.BigEndian.AppendUint64(nil, uint64(ch.Seq)))
	})
}

// markExpiryRecorded notes in the mirror that another instance recorded
// the key's expiry, so this one does not record it again.
func markExpiryRecorded(tx *store.Tx, ev SharedEvent) error {
	rec, err := getRecord(tx, ev.KeyID)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if rec.ExpiryRecorded || rec.ExpiresAt == nil || ev.At.Before(rec.ExpiresAt.Truncate(time.Microsecond)) {
		return nil // an earlier expiry, since moved by an update
	}
	rec.ExpiryRecorded = true
	return putRecord(tx, rec)
}
