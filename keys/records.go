package keys

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// SystemOfRecord is where keys live when several instances share them
// (cluster mode): the Service then writes there first and keeps its store
// as a mirror, which Verify reads, so the request path never waits on it.
//
// Records are the Service's own JSON (with the HMAC hashes, never a
// secret); an implementation stores them as they are. Every write is one
// change: the record, its audit event and the next change sequence,
// committed together. Sequences start at 1 and have no gaps, and a change
// with a higher sequence never becomes visible before a lower one, so a
// mirror that has applied n needs exactly the changes after n.
//
// Implementations are safe for concurrent use and return errors that wrap
// ErrUnavailable when they cannot reach their store or cannot confirm a
// write.
type SystemOfRecord interface {
	// CreateKey stores a new key's record with its "created" event.
	CreateKey(ctx context.Context, id string, record []byte, ev Event) (seq int64, err error)
	// ModifyKey locks the key's record, passes it to change and stores
	// what change returns with its event, all in one transaction:
	// concurrent modifications of one key, from any instance, apply one
	// after the other. An error from change aborts the write and is
	// returned as it is. Errors: ErrNotFound, ErrUnavailable.
	ModifyKey(ctx context.Context, id string, change func(record []byte) ([]byte, Event, error)) (seq int64, record []byte, err error)
	// KeyChanges returns at most limit changes after sequence after, in
	// sequence order. Each record carries the key's cluster-wide
	// last_used_at, so a new mirror learns it with the key.
	KeyChanges(ctx context.Context, after int64, limit int) ([]Change, error)

	// MergeUsage merges what flushes of the write-behind learnt, in one
	// transaction: each key's last_used_at moves forward to the batch's
	// time when that is later (never back), and each event is inserted
	// once per identity (Origin, FlushSeq, KeyID, Type), so retrying a
	// merge that did commit adds nothing. A merge that changes something
	// takes the next usage sequence, a counter of its own: usage is not a
	// key change. Keys the system of record does not have are skipped.
	MergeUsage(ctx context.Context, batch UsageBatch) error
	// UsageChanges returns what the merges after usage sequence after,
	// and at most limit of them, changed. Like key changes, usage
	// sequences have no gaps and become visible in order.
	UsageChanges(ctx context.Context, after int64, limit int) (UsageChanges, error)
}

// Change is one committed write in a SystemOfRecord.
type Change struct {
	Seq   int64
	Event Event // the write's audit event; Event.KeyID names the key
	// Record is the key's record as it is now, which may include later
	// changes: applying it early is harmless, since the later changes
	// bring the same record again.
	Record []byte
}

// SecretCheck is a value that shows whether two instances hash keys with
// the same secret, without revealing it (an HMAC of a fixed label).
func SecretCheck(secret []byte) string {
	sum := newHasher(secret).sum(secretCheckLabel)
	return hex.EncodeToString(sum[:])
}

// mirrorSeqKey holds, in the meta bucket, the sequence of the last change
// of the system of record this store has applied.
var mirrorSeqKey = []byte("keys_mirror_seq")

// mirrorLastKey holds the fingerprint of that change.
var mirrorLastKey = []byte("keys_mirror_last")

// syncBatch is how many changes one Sync round reads and applies in one
// bbolt transaction.
const syncBatch = 500

// MirrorSeq returns the sequence of the last change the mirror has
// applied (0 without a system of record).
func (s *Service) MirrorSeq() int64 { return s.mirrorSeq.Load() }

// Sync brings the mirror up to date: it reads the changes after the last
// one applied from the system of record and applies them, in batches,
// each in one bbolt transaction, invalidating the cached verifications of
// every key they touch. Calls are serialised; a call that waited for
// another finds little or nothing left to do. Without a system of record
// it does nothing. Errors wrap what the system of record returned.
//
// Each round also reads the last change applied, and compares it with what
// the mirror remembers of it: a database restored from a backup (or
// replaced) may hold another change under that sequence, or none. The
// mirror then replays the whole log: records are overwritten and
// replicated events are keyed by sequence, so nothing is duplicated; keys
// the mirror has and the database lacks stay in the mirror.
func (s *Service) Sync(ctx context.Context) error {
	if s.records == nil {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	for {
		after := s.mirrorSeq.Load()
		changes, err := s.records.KeyChanges(ctx, max(after-1, 0), syncBatch+1)
		if err != nil {
			return fmt.Errorf("keys: sync: %w", err)
		}
		if after > 0 {
			if len(changes) == 0 || changes[0].Seq != after || fingerprint(changes[0]) != s.mirrorLast {
				s.log.Warn("the cluster's key change log differs from this mirror's (a restored or replaced database?): replaying it from the start; keys only this mirror has stay in it and keep working on this instance",
					"mirror_seq", after)
				s.mirrorSeq.Store(0)
				continue
			}
			changes = changes[1:]
		}
		if len(changes) == 0 {
			return nil
		}
		if err := s.applyChanges(changes, after == 0); err != nil {
			return fmt.Errorf("keys: sync: %w", err)
		}
		if len(changes) < syncBatch {
			return nil
		}
	}
}

// fingerprint identifies a change well enough to tell it from another
// change with the same sequence in a restored database.
func fingerprint(ch Change) string {
	return fmt.Sprintf("%d %s %s %d", ch.Seq, ch.Event.KeyID, ch.Event.Type, ch.Event.At.UnixNano())
}

// applyChanges writes changes into the mirror in one transaction and then
// makes every verification of the keys they touch reload. A change the
// mirror has applied already is skipped, so applying twice is harmless;
// fromStart replays changes whatever the mirror has applied. It needs
// syncMu.
func (s *Service) applyChanges(changes []Change, fromStart bool) error {
	var touched [][]byte
	var applied int64
	last := s.mirrorLast
	err := s.store.Update(func(tx *store.Tx) error {
		touched, last = touched[:0], s.mirrorLast
		meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
		if err != nil {
			return err
		}
		applied = readSeq(meta.Get(mirrorSeqKey))
		if fromStart {
			applied = 0
		}
		for _, ch := range changes {
			if ch.Seq <= applied {
				continue
			}
			if ch.Seq != applied+1 {
				// Cannot happen with a conforming system of record; the
				// records are whole, so applying still converges.
				s.log.Warn("key change sequence has a gap", "after", applied, "got", ch.Seq)
			}
			var rec record
			if err := json.Unmarshal(ch.Record, &rec); err != nil {
				return fmt.Errorf("key %s in change %d: %w", ch.Event.KeyID, ch.Seq, err)
			}
			hashes, err := applyRecord(tx, &rec)
			if err != nil {
				return err
			}
			touched = append(touched, hashes...)
			if err := putReplicatedEvent(tx, ch.Seq, ch.Event); err != nil {
				return err
			}
			applied, last = ch.Seq, fingerprint(ch)
		}
		if err := meta.Put(mirrorLastKey, []byte(last)); err != nil {
			return err
		}
		return meta.Put(mirrorSeqKey, binary.BigEndian.AppendUint64(nil, uint64(applied)))
	})
	if err != nil {
		return err
	}
	s.afterApply(touched)
	s.mirrorSeq.Store(applied)
	s.mirrorLast = last
	return nil
}

// replicatedEventSeq marks the bucket sequence part of a replicated
// event's key: it is the change's own sequence with the top bit set, so
// applying a change twice writes the same entry, and the key space never
// meets the bucket's own NextSequence values of local events.
const replicatedEventSeq = 1 << 63

func putReplicatedEvent(tx *store.Tx, seq int64, ev Event) error {
	b, err := tx.MustBucket(store.BucketKeyEvents)
	if err != nil {
		return err
	}
	v, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	return b.Put(eventKey(ev.KeyID, ev.At, replicatedEventSeq|uint64(seq)), v)
}

// applyRecord replaces a key's record in the mirror with rec, keeping what
// only this instance knows (last_used_at, whether the expiry event was
// written), and makes the hash bucket match rec's hashes. It returns
// every hash of the old and the new record, which the caller passes to
// afterApply once the transaction has committed.
func applyRecord(tx *store.Tx, rec *record) ([][]byte, error) {
	old, err := getRecord(tx, rec.ID)
	if errors.Is(err, ErrNotFound) {
		old = nil
	} else if err != nil {
		return nil, err
	}
	hashes, err := tx.MustBucket(store.BucketKeyHashes)
	if err != nil {
		return nil, err
	}
	var touched [][]byte
	if old != nil {
		if old.LastUsedAt != nil && (rec.LastUsedAt == nil || old.LastUsedAt.After(*rec.LastUsedAt)) {
			rec.LastUsedAt = old.LastUsedAt
		}
		if old.ExpiryRecorded && sameTime(old.ExpiresAt, rec.ExpiresAt) {
			rec.ExpiryRecorded = true
		}
		for _, h := range [][]byte{old.Hash, old.PreviousHash} {
			if h == nil {
				continue
			}
			touched = append(touched, h)
			if !slices.ContainsFunc([][]byte{rec.Hash, rec.PreviousHash}, func(n []byte) bool { return string(n) == string(h) }) {
				if err := hashes.Delete(h); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := putHash(tx, rec.Hash, rec.ID, hashCurrent); err != nil {
		return nil, err
	}
	touched = append(touched, rec.Hash)
	if rec.PreviousHash != nil {
		if err := putHash(tx, rec.PreviousHash, rec.ID, hashPrevious); err != nil {
			return nil, err
		}
		touched = append(touched, rec.PreviousHash)
	}
	return touched, putRecord(tx, rec)
}

// afterApply runs once a transaction that called applyRecord has
// committed: every hash becomes known to the in-memory index (a dropped
// one only costs a lookup that finds nothing) and every cached
// verification of them is made stale, so the change is in force for the
// next request on this instance.
func (s *Service) afterApply(hashes [][]byte) {
	for _, h := range hashes {
		if len(h) == 32 {
			s.index.add(prefixOf((*[32]byte)(h)))
		}
		s.invalidate(h)
	}
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

func readSeq(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// loadMirrorSeq reads the last applied change sequence, and the last
// usage merge pulled, at start.
func (s *Service) loadMirrorSeq() error {
	return s.store.View(func(tx *store.Tx) error {
		if meta := tx.Bucket(store.BucketMeta); meta != nil {
			s.mirrorSeq.Store(readSeq(meta.Get(mirrorSeqKey)))
			s.usage.pulledSeq.Store(readSeq(meta.Get(usageSeqKey)))
			s.mirrorLast = string(meta.Get(mirrorLastKey))
		}
		return nil
	})
}

// createShared stores a new key in the system of record and then brings
// the mirror up to date, so the key works on this instance when Create
// returns. Errors: ErrUnavailable.
func (s *Service) createShared(rec *record, ev Event) (*record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.writeTimeout)
	defer cancel()
	body, err := json.Marshal(shared(rec))
	if err != nil {
		return nil, err
	}
	if _, err := s.records.CreateKey(ctx, rec.ID, body, ev); err != nil {
		return nil, fmt.Errorf("keys: create: %w", err)
	}
	return s.mirrored(ctx, rec), nil
}

// modifyShared runs change on the system of record's copy of the key,
// under its lock, and then brings the mirror up to date. Errors:
// ErrNotFound, ErrAlreadyRevoked, what change returns, ErrUnavailable.
func (s *Service) modifyShared(id string, revokedToo bool, change func(*record) (Event, error)) (*record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.writeTimeout)
	defer cancel()
	_, body, err := s.records.ModifyKey(ctx, id, func(current []byte) ([]byte, Event, error) {
		var rec record
		if err := json.Unmarshal(current, &rec); err != nil {
			return nil, Event{}, fmt.Errorf("keys: record %s: %w", id, err)
		}
		if rec.RevokedAt != nil && !revokedToo {
			return nil, Event{}, ErrAlreadyRevoked
		}
		ev, err := change(&rec)
		if err != nil {
			return nil, Event{}, err
		}
		next, err := json.Marshal(shared(&rec))
		return next, ev, err
	})
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(body, &rec); err != nil {
		return nil, fmt.Errorf("keys: record %s: %w", id, err)
	}
	return s.mirrored(ctx, &rec), nil
}

// mirrored syncs the mirror after a committed write and returns the
// mirror's record of the key (with its local last_used_at). The write has
// committed whatever happens here: when the sync fails, the Listener's
// next one brings the change, and the caller gets rec as committed.
func (s *Service) mirrored(ctx context.Context, rec *record) *record {
	if err := s.Sync(ctx); err != nil {
		s.log.Warn("key written to the cluster but not yet mirrored here", "key", rec.ID, "err", err)
		return rec
	}
	var local *record
	err := s.store.View(func(tx *store.Tx) error {
		var err error
		local, err = getRecord(tx, rec.ID)
		return err
	})
	if err != nil {
		return rec
	}
	return local
}

// shared is the part of a record the cluster shares: last_used_at and the
// expiry event's flag stay with the instance that saw the request.
func shared(rec *record) *record {
	out := *rec
	out.LastUsedAt = nil
	out.ExpiryRecorded = false
	return &out
}
