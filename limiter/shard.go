package limiter

import "sync"

// entryKey identifies a set of buckets: a subject's tier buckets and
// monthly counter (route ""), or one of its route buckets. Both live in the
// same shard, chosen by the subject, so one lock covers a whole request.
type entryKey struct {
	subject, route string
}

// entry is the state of one key. A subject entry uses hour, minute and the
// monthly counter; a route entry uses only route.
type entry struct {
	key      entryKey
	lastUsed uint64 // the shard's tick at the last request: larger is more recent
	tier     string // last tier seen, so Over can judge usage

	hour, minute, route bucket
	// changed is when a bucket last changed (a debit or a capacity
	// conversion). A later capacity change is converted at the later of
	// changed and the start of the calendar day: if the entry has not
	// changed today, the day's rules took effect at local midnight.
	changed int64

	month int32 // monthID the counter belongs to
	used  int64 // cost admitted in month, counted only for tiers with a quota

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

// shard is one lock's share of the subjects.
type shard struct {
	mu      sync.Mutex
	entries map[entryKey]*entry
	tick    uint64 // counts requests, to order entries by last use
	limit   int    // most entries held

	// tombstones are keys of evicted entries that may have a stored
	// record; the next snapshot deletes them.
	tombstones []entryKey

	idleEvictions, forcedEvictions uint64

	_ [64]byte // keep neighbouring shards' locks off this cache line
}

func (s *shard) init(limit int) {
	s.entries = make(map[entryKey]*entry)
	s.limit = limit
}

// get returns the entry for k, creating it (and evicting another when the
// shard is full) if needed, and marks it used. protect is never evicted:
// it is an entry the caller already holds for this request. Needs s.mu.
func (s *shard) get(k entryKey, protect *entry, now int64, month int32) *entry {
	s.tick++
	if e, ok := s.entries[k]; ok {
		e.lastUsed = s.tick
		return e
	}
	var e *entry
	if len(s.entries) >= s.limit {
		e = s.evictOne(protect, now, month)
	}
	if e == nil {
		e = new(entry)
	} else {
		*e = entry{} // reuse the evicted entry's memory
	}
	e.key, e.lastUsed = k, s.tick
	s.entries[k] = e
	return e
}

// evictOne makes room: among evictionSample entries (Go starts each map
// iteration at a random place, so they are a random sample) it drops an
// idle one, or else the least recently used, preferring one without a
// monthly count: forgetting a count hands out quota again, forgetting a
// bucket only a little burst. It returns the dropped entry for reuse, or
// nil if only protect was there. Needs s.mu.
func (s *shard) evictOne(protect *entry, now int64, month int32) *entry {
	var oldest, oldestUncounted *entry
	n := 0
	for _, e := range s.entries {
		if e == protect {
			continue
		}
		if e.idle(now, month) {
			s.remove(e)
			s.idleEvictions++
			return e
		}
		if oldest == nil || e.lastUsed < oldest.lastUsed {
			oldest = e
		}
		if (e.used == 0 || e.month != month) && (oldestUncounted == nil || e.lastUsed < oldestUncounted.lastUsed) {
			oldestUncounted = e
		}
		if n++; n == evictionSample {
			break
		}
	}
	victim := oldestUncounted
	if victim == nil {
		victim = oldest
	}
	if victim == nil {
		return nil
	}
	s.remove(victim)
	s.forcedEvictions++
	return victim
}

// sweep drops every idle entry and returns how many. Needs s.mu.
func (s *shard) sweep(now int64, month int32) int {
	n := 0
	for _, e := range s.entries {
		if e.idle(now, month) {
			s.remove(e)
			n++
		}
	}
	s.idleEvictions += uint64(n)
	return n
}

// remove drops e from the map, leaving a tombstone if the store may hold a
// record for it. Needs s.mu.
func (s *shard) remove(e *entry) {
	delete(s.entries, e.key)
	if e.persisted {
		s.tombstones = append(s.tombstones, e.key)
	}
}
