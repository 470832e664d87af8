package keys

import (
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// epochShards splits cache invalidation so that a write to one key does
// not send every other key back to the disk.
const epochShards = 1024

// cacheEntry is one verified secret. epoch is the invalidation epoch of
// the hash's shard read before the record was loaded: an entry whose epoch
// is older than the shard's current one was loaded before the last write
// and is ignored. This is what makes a revoke effective for the very next
// request, even though ristretto applies Sets asynchronously and could
// otherwise resurrect an entry loaded just before the write.
type cacheEntry struct {
	hash       [32]byte
	ident      *Identity
	graceUntil time.Time // non-zero when this is a rotated-out secret
	epoch      uint64
}

// Verify checks a presented key at now and returns the key's identity.
//
// Errors: ErrMalformed (shape or checksum wrong; no lookup was made),
// ErrNotFound, ErrExpired, ErrRevoked. With ErrExpired and ErrRevoked the
// identity is returned too, so the caller can attribute the request.
//
// A key no stored hash matches is rejected from memory, so a flood of
// random keys costs no disk reads. A known key is served from the cache
// after the first verification; Verify then allocates nothing.
func (s *Service) Verify(now time.Time, presented string) (*Identity, error) {
	if !wellFormed(presented) {
		return nil, ErrMalformed
	}
	hash := s.hasher.sum(presented)
	p := prefixOf(&hash)
	if !s.index.contains(p) {
		return nil, ErrNotFound
	}
	shard := &s.epochs[p%epochShards]
	epoch := shard.Load()
	e, ok := s.cache.Get(p)
	if !ok || e.epoch != epoch || subtle.ConstantTimeCompare(e.hash[:], hash[:]) != 1 {
		var err error
		if e, err = s.load(hash, epoch); err != nil {
			return nil, err
		}
		s.cache.Set(p, e, 1)
	}
	return s.check(now, e)
}

func (s *Service) check(now time.Time, e *cacheEntry) (*Identity, error) {
	id := e.ident
	switch {
	case id.Revoked:
		return id, ErrRevoked
	case !e.graceUntil.IsZero() && !now.Before(e.graceUntil):
		return id, ErrExpired
	case !id.ExpiresAt.IsZero() && !now.Before(id.ExpiresAt):
		s.behind.expiredOnce(id, now)
		return id, ErrExpired
	}
	s.touch(now, id)
	return id, nil
}

// touch queues last_used_at for the write-behind at most once a second per
// key, so a hot key costs one atomic load per request.
func (s *Service) touch(now time.Time, id *Identity) {
	sec := now.Unix()
	last := id.lastUsedQueued.Load()
	if sec <= last || !id.lastUsedQueued.CompareAndSwap(last, sec) {
		return
	}
	s.behind.touch(id.ID, now)
}

// load reads the record a hash belongs to.
func (s *Service) load(hash [32]byte, epoch uint64) (*cacheEntry, error) {
	var e *cacheEntry
	err := s.store.View(func(tx *store.Tx) error {
		hashes, err := tx.MustBucket(store.BucketKeyHashes)
		if err != nil {
			return err
		}
		v := hashes.Get(hash[:])
		if len(v) < 2 {
			return ErrNotFound
		}
		rec, err := getRecord(tx, string(v[1:]))
		if err != nil {
			return err
		}
		e = &cacheEntry{hash: hash, ident: newIdentity(rec), epoch: epoch}
		if v[0] == hashPrevious {
			if rec.GraceUntil == nil {
				return ErrNotFound
			}
			e.graceUntil = *rec.GraceUntil
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	return e, err
}

// invalidate makes every cached verification of hash stale.
func (s *Service) invalidate(hash []byte) {
	var h [32]byte
	copy(h[:], hash)
	p := prefixOf(&h)
	s.epochs[p%epochShards].Add(1)
	s.cache.Del(p)
}

// loadIndex reads every stored hash into memory.
func (s *Service) loadIndex() error {
	s.index.init()
	return s.store.View(func(tx *store.Tx) error {
		hashes, err := tx.MustBucket(store.BucketKeyHashes)
		if err != nil {
			return err
		}
		return hashes.ForEach(func(k, _ []byte) error {
			if len(k) == 32 {
				s.index.add(prefixOf((*[32]byte)(k)))
			}
			return nil
		})
	})
}

// hashIndex is the set of every stored hash's 64-bit prefix: the answer to
// "could this key exist?" without touching the disk. Entries are never
// removed (a dropped hash only costs a disk read that finds nothing).
type hashIndex struct {
	shards [64]struct {
		mu  sync.RWMutex
		set map[uint64]struct{}
	}
}

func (x *hashIndex) init() {
	for i := range x.shards {
		x.shards[i].set = make(map[uint64]struct{})
	}
}

func (x *hashIndex) add(p uint64) {
	sh := &x.shards[p%uint64(len(x.shards))]
	sh.mu.Lock()
	sh.set[p] = struct{}{}
	sh.mu.Unlock()
}

func (x *hashIndex) contains(p uint64) bool {
	sh := &x.shards[p%uint64(len(x.shards))]
	sh.mu.RLock()
	_, ok := sh.set[p]
	sh.mu.RUnlock()
	return ok
}
