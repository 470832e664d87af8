package limiter

import (
	"math/bits"
	"math/rand/v2"
	"sync"
)

// entryKey identifies a set of buckets: a subject's tier buckets and
// monthly counter (route ""), or one of its route buckets. Both live in the
// same shard, chosen by the subject, so one lock covers a whole request.
type entryKey struct {
	subject Subject
	route   RouteBucket
}

// entry is the state of one key. A subject entry uses hour, minute and the
// monthly counter; a route entry uses only route.
//
// Entries are stored by value in their shard's table. The fields are
// ordered so an entry is exactly 128 bytes on 64-bit platforms: two
// adjacent cache lines, both loaded at once from the slot's address, where
// a pointer to the entry would have cost a dependent miss.
type entry struct {
	key  entryKey
	tier string // last tier seen, so Over can judge usage

	hour, minute, route bucket
	// changed is when a bucket last changed (a debit or a capacity
	// conversion). A later capacity change is converted at the later of
	// changed and the start of the calendar day: if the entry has not
	// changed today, the day's rules took effect at local midnight.
	changed int64

	used     int64  // cost admitted in month, counted only for tiers with a quota
	lastUsed uint64 // the shard's tick at the last request: larger is more recent
	month    int32  // monthID the counter belongs to

	dirty     bool // changed since the last snapshot
	persisted bool // a record for key may exist in the store
}

// idle reports whether e carries no information at now: every bucket is
// full and the monthly counter is empty or belongs to another month. Such
// an entry can be dropped; a new one would behave the same.
func (e *entry) idle(now int64, month int32) bool {
	return e.hour.isFull(now) && e.minute.isFull(now) && e.route.isFull(now) &&
		(e.used == 0 || e.month != month)
}

// evictionSample is how many entries eviction looks at. Like Redis's
// approximated LRU, it samples rather than keeping a list in order: moving
// an entry to the front of a list on every request writes two neighbours'
// cache lines, which doubled the cost of a decision with many subjects.
const evictionSample = 16

// minSlots is the size of a new shard's table.
const minSlots = 8

// keyHash is the 64-bit seeded hash of a subject, or of a subject and a
// route combined by routeHash. Its low bits choose the shard and its high
// 32 bits (slotHash) the place in the shard's table, so the two choices are
// independent.
type keyHash = uint64

// routeHash combines a subject's hash with its route's.
func routeHash(subject, route keyHash) keyHash {
	return subject ^ bits.RotateLeft64(route*0x9e3779b97f4a7c15, 31)
}

// slotHash is the part of h a shard stores and indexes by; 0 marks an
// empty slot, so it is never 0.
func slotHash(h keyHash) uint32 {
	if s := uint32(h >> 32); s != 0 {
		return s
	}
	return 1
}

// shard is one lock's share of the entries: an open-addressed hash table
// with linear probing. hashes[i] is the slotHash of entries[i]'s key, or 0
// for an empty slot; a key's probe starts at hashes&mask. Lookups compare
// the 32-bit hashes, which sit 16 to a cache line, and then the whole key,
// so two keys never share an entry. Deletion shifts the rest of a probe
// run back instead of leaving tombstones, so probes stay short under the
// constant eviction of a full shard. The table doubles when three quarters
// full; since eviction keeps it at limit entries it stops growing there.
type shard struct {
	mu      sync.Mutex
	hashes  []uint32
	entries []entry
	count   int    // entries held
	tick    uint64 // counts requests, to order entries by last use
	limit   int    // most entries held

	// tombstones are keys of evicted entries that may have a stored
	// record; the next snapshot deletes them.
	tombstones []entryKey

	idleEvictions, forcedEvictions uint64

	_ [64]byte // keep neighbouring shards' locks off this cache line
}

func (s *shard) init(limit int) {
	s.hashes = make([]uint32, minSlots)
	s.entries = make([]entry, minSlots)
	s.limit = limit
}

// find returns the index of k's entry, -1 if there is none. h is
// slotHash(k's hash). Needs s.mu.
func (s *shard) find(k entryKey, h uint32) int {
	mask := uint32(len(s.hashes) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.hashes[i] {
		case 0:
			return -1
		case h:
			if s.entries[i].key == k {
				return int(i)
			}
		}
	}
}

// get returns the index of k's entry, creating it (and evicting another
// when the shard is full) if needed, and marks it used. h is slotHash(k's
// hash). The entry at index protect (-1 for none) is never evicted: it is
// an entry the caller already holds for this request. Creating an entry
// may move others; moved reports that, and that indexes taken before the
// call must be looked up again. Needs s.mu.
func (s *shard) get(k entryKey, h uint32, protect int, now int64, month int32) (i int, moved bool) {
	s.tick++
	if i = s.find(k, h); i >= 0 {
		s.entries[i].lastUsed = s.tick
		return i, false
	}
	if s.count >= s.limit {
		moved = s.evictOne(protect, now, month)
	}
	if (s.count+1)*4 > len(s.hashes)*3 {
		s.grow()
		moved = true
	}
	mask := uint32(len(s.hashes) - 1)
	j := h & mask
	for s.hashes[j] != 0 {
		j = (j + 1) & mask
	}
	s.hashes[j] = h
	s.entries[j] = entry{key: k, lastUsed: s.tick}
	s.count++
	return int(j), moved
}

// grow doubles the table. Needs s.mu.
func (s *shard) grow() {
	oldHashes, oldEntries := s.hashes, s.entries
	n := 2 * len(oldHashes)
	s.hashes, s.entries = make([]uint32, n), make([]entry, n)
	mask := uint32(n - 1)
	for i, h := range oldHashes {
		if h == 0 {
			continue
		}
		j := h & mask
		for s.hashes[j] != 0 {
			j = (j + 1) & mask
		}
		s.hashes[j], s.entries[j] = h, oldEntries[i]
	}
}

// evictOne makes room: among evictionSample entries (consecutive slots
// from a random place; slots are in hash order, so they are a random
// sample) it drops an idle one, or else the least recently used,
// preferring one without a monthly count: forgetting a count hands out
// quota again, forgetting a bucket only a little burst. It reports whether
// it dropped one; it does not when only protect was there. Needs s.mu.
func (s *shard) evictOne(protect int, now int64, month int32) bool {
	mask := uint32(len(s.hashes) - 1)
	start := rand.Uint32()
	oldest, oldestUncounted := -1, -1
	n := 0
	for k := range uint32(len(s.hashes)) {
		i := (start + k) & mask
		if s.hashes[i] == 0 || int(i) == protect {
			continue
		}
		e := &s.entries[i]
		if e.idle(now, month) {
			s.removeAt(i)
			s.idleEvictions++
			return true
		}
		if oldest < 0 || e.lastUsed < s.entries[oldest].lastUsed {
			oldest = int(i)
		}
		if (e.used == 0 || e.month != month) && (oldestUncounted < 0 || e.lastUsed < s.entries[oldestUncounted].lastUsed) {
			oldestUncounted = int(i)
		}
		if n++; n == evictionSample {
			break
		}
	}
	victim := oldestUncounted
	if victim < 0 {
		victim = oldest
	}
	if victim < 0 {
		return false
	}
	s.removeAt(uint32(victim))
	s.forcedEvictions++
	return true
}

// sweep drops every idle entry and returns how many. Needs s.mu.
func (s *shard) sweep(now int64, month int32) int {
	n := 0
	for i := 0; i < len(s.hashes); {
		if s.hashes[i] != 0 && s.entries[i].idle(now, month) {
			// removeAt moves a later entry (never one before i, except
			// from the table's start, already seen) into i: look again.
			s.removeAt(uint32(i))
			n++
			continue
		}
		i++
	}
	s.idleEvictions += uint64(n)
	return n
}

// removeAt drops the entry at i, leaving a tombstone if the store may hold
// a record for it, and moves back the entries after it in its probe run
// whose probe started at or before the hole. Needs s.mu.
func (s *shard) removeAt(i uint32) {
	if e := &s.entries[i]; e.persisted {
		s.tombstones = append(s.tombstones, e.key)
	}
	mask := uint32(len(s.hashes) - 1)
	hole := i
	for j := (i + 1) & mask; s.hashes[j] != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole if the hole lies on its probe,
		// between its home slot and j.
		if home := s.hashes[j] & mask; (j-home)&mask >= (j-hole)&mask {
			s.hashes[hole], s.entries[hole] = s.hashes[j], s.entries[j]
			hole = j
		}
	}
	s.hashes[hole] = 0
	s.entries[hole] = entry{} // drop the strings
	s.count--
}
