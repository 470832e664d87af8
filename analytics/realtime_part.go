package analytics

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// RealtimePartKind says which half of a 10-second slot a RealtimePart
// carries.
type RealtimePartKind int16

const (
	// PartSeconds is a slot's ten per-second counters: the global
	// figures, exact to the second. An instance publishes the slot in
	// progress every second, so the part is overwritten until the slot
	// is over.
	PartSeconds RealtimePartKind = 1
	// PartTables is a slot's route and key tables. Like the seconds, an
	// instance publishes the slot in progress every second, so a peer's
	// top lists are as fresh as its counts, and once more a second after
	// the slot is over (so requests that finish just after their slot
	// still count).
	PartTables RealtimePartKind = 2
)

// partVersion is the first byte of every payload; a reader refuses others
// (ErrBadPart), so a future layout cannot be misread.
const partVersion = 1

// RealtimePart is one half of one slot of a Realtime ring in a binary
// encoding only this package reads, for another instance's Peers. It
// holds absolute values: applying a newer part of the same slot replaces
// the older, so publishing one twice is harmless.
type RealtimePart struct {
	Kind    RealtimePartKind
	Start   time.Time // the slot's start, a multiple of SlotWidth since the Unix epoch
	Payload []byte
}

// Parts returns what this instance publishes for the other instances at
// now, given that every slot before from has been published in full (a
// zero from means as far back as the ring reaches): for each slot from
// from to the one holding now that the ring holds, a PartSeconds, and a
// PartTables when its tables hold anything. Both parts of a slot are read
// under the slot's lock at once, so a peer that applies them together
// (Peers.Apply) shows counts and top lists of the same moment. next is
// the first slot not over a second before now, whose parts are still to
// change: pass it as from on the next call once the parts are stored, or
// from again when storing failed, so a slot's last parts are not lost to
// an outage shorter than the ring.
//
// It locks one slot at a time and encodes under the lock only the tables
// (of at most MaxRoutes routes and MaxKeys keys), a walk like the one a
// Snapshot makes of each slot, so it stalls Record no longer than a
// Snapshot does. Safe for concurrent use.
func (rt *Realtime) Parts(now, from time.Time) (parts []RealtimePart, next time.Time) {
	last := lastComplete(now)
	newest := floorDiv(now.Unix(), slotSeconds)
	over := floorDiv(last, slotSeconds) // slots before this one are over
	oldest := newest - int64(len(rt.slots)) + 1
	n := oldest
	if !from.IsZero() {
		n = max(floorDiv(from.Unix(), slotSeconds), oldest)
	}
	for ; n <= newest; n++ {
		var seconds [slotSeconds]counters
		var tables []byte
		held := false
		s := &rt.slots[ringIndex(n, len(rt.slots))]
		s.mu.Lock()
		if s.at == n {
			held = true
			seconds = s.seconds
			if len(s.routes.entries) > 0 || len(s.keys.entries) > 0 {
				tables = appendTables(make([]byte, 0, 64+len(s.routes.entries)*64+len(s.keys.entries)*48), s)
			}
		}
		s.mu.Unlock()
		if !held {
			continue
		}
		start := time.Unix(n*slotSeconds, 0).UTC()
		parts = append(parts, RealtimePart{Kind: PartSeconds, Start: start, Payload: appendSeconds(nil, &seconds)})
		if tables != nil {
			parts = append(parts, RealtimePart{Kind: PartTables, Start: start, Payload: tables})
		}
	}
	return parts, time.Unix(max(over, oldest)*slotSeconds, 0).UTC()
}

func appendSeconds(dst []byte, seconds *[slotSeconds]counters) []byte {
	dst = append(dst, partVersion)
	for i := range seconds {
		dst = seconds[i].appendBinary(dst)
	}
	return dst
}

// appendTables encodes s's route and key tables; it needs s.mu.
func appendTables(dst []byte, s *slot) []byte {
	dst = append(dst, partVersion)
	dst = binary.AppendUvarint(dst, uint64(len(s.routes.entries)))
	for i := range s.routes.entries {
		e := &s.routes.entries[i]
		dst = appendString(dst, e.name)
		dst = e.counters.appendBinary(dst)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.keys.entries)))
	for i := range s.keys.entries {
		e := &s.keys.entries[i]
		dst = appendString(dst, e.name)
		dst = appendString(dst, e.owner)
		dst = appendString(dst, e.tier)
		for _, v := range [...]uint32{e.requests, e.errors5xx, e.rateLimited, e.maxLatencyUS} {
			dst = binary.AppendUvarint(dst, uint64(v))
		}
		// Which buckets are set, as a bit mask, then their counts.
		var mask uint64
		for j, c := range e.latency {
			if c != 0 {
				mask |= 1 << j
			}
		}
		dst = binary.AppendUvarint(dst, mask)
		for _, c := range e.latency {
			if c != 0 {
				dst = binary.AppendUvarint(dst, uint64(c))
			}
		}
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendBinary encodes c: a single 0 when it counted nothing, else its
// sums and the histogram's set buckets as (gap, count) pairs.
func (c *counters) appendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, c.count)
	if c.count == 0 {
		return dst
	}
	for _, v := range c.status {
		dst = binary.AppendUvarint(dst, v)
	}
	for _, v := range [...]uint64{c.rateLimited, c.authFailures, c.bytesIn, c.bytesOut,
		c.latencySumUS, c.latencyMinUS, c.latencyMaxUS, c.zero} {
		dst = binary.AppendUvarint(dst, v)
	}
	set := 0
	for _, n := range c.latency {
		if n != 0 {
			set++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(set))
	prev := -1
	for i, n := range c.latency {
		if n != 0 {
			dst = binary.AppendUvarint(dst, uint64(i-prev))
			dst = binary.AppendUvarint(dst, uint64(n))
			prev = i
		}
	}
	return dst
}

// partReader decodes a payload; the first error sticks, and every read
// after it returns zero.
type partReader struct {
	buf []byte
	err error
}

func (r *partReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadPart}, args...)...)
	}
}

func (r *partReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("truncated number")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// small reads a number that must fit a uint32 counter.
func (r *partReader) small() uint32 {
	v := r.uvarint()
	if v > math.MaxUint32 {
		r.fail("count %d out of range", v)
		return 0
	}
	return uint32(v)
}

// length reads a count of items that each take at least one byte.
func (r *partReader) length() int {
	v := r.uvarint()
	if v > uint64(len(r.buf)) {
		r.fail("length %d beyond the payload's end", v)
		return 0
	}
	return int(v)
}

func (r *partReader) str() string {
	n := r.length()
	if r.err != nil {
		return ""
	}
	s := string(r.buf[:n])
	r.buf = r.buf[n:]
	return s
}

func (r *partReader) version() {
	if len(r.buf) == 0 || r.buf[0] != partVersion {
		r.fail("not a version-%d payload", partVersion)
		return
	}
	r.buf = r.buf[1:]
}

func (r *partReader) end() error {
	if r.err == nil && len(r.buf) != 0 {
		r.fail("%d bytes after the end", len(r.buf))
	}
	return r.err
}

func (r *partReader) counters(c *counters) {
	*c = counters{}
	if c.count = r.uvarint(); c.count == 0 {
		return
	}
	for i := range c.status {
		c.status[i] = r.uvarint()
	}
	for _, v := range [...]*uint64{&c.rateLimited, &c.authFailures, &c.bytesIn, &c.bytesOut,
		&c.latencySumUS, &c.latencyMinUS, &c.latencyMaxUS, &c.zero} {
		*v = r.uvarint()
	}
	set := r.length()
	i := -1
	for range set {
		i += int(min(r.uvarint(), fineBuckets+1))
		n := r.small()
		if r.err != nil {
			return
		}
		if i >= fineBuckets {
			r.fail("latency bucket %d out of range", i)
			return
		}
		c.latency[i] = n
	}
}

// decodeSeconds reads a PartSeconds payload.
func decodeSeconds(payload []byte, seconds *[slotSeconds]counters) error {
	r := partReader{buf: payload}
	r.version()
	for i := range seconds {
		r.counters(&seconds[i])
	}
	return r.end()
}

// decodeTables reads a PartTables payload of at most maxRoutes routes and
// maxKeys keys (a route takes about 1 KB decoded, so a short payload must
// not claim millions of them).
func decodeTables(payload []byte, maxRoutes, maxKeys int) (routes []routeEntry, keys []subjectEntry, err error) {
	r := partReader{buf: payload}
	r.version()
	if n := r.length(); n > maxRoutes {
		r.fail("%d routes, more than the %d a slot holds", n, maxRoutes)
	} else {
		routes = make([]routeEntry, n)
	}
	for i := range routes {
		routes[i].name = r.str()
		r.counters(&routes[i].counters)
	}
	if n := r.length(); n > maxKeys {
		r.fail("%d keys, more than the %d a slot holds", n, maxKeys)
	} else {
		keys = make([]subjectEntry, n)
	}
	for i := range keys {
		e := &keys[i]
		e.name, e.owner, e.tier = r.str(), r.str(), r.str()
		e.requests, e.errors5xx, e.rateLimited, e.maxLatencyUS = r.small(), r.small(), r.small(), r.small()
		mask := r.uvarint()
		if mask >= 1<<coarseBuckets {
			r.fail("latency buckets %#x out of range", mask)
		}
		for j := range e.latency {
			if mask&(1<<j) != 0 {
				e.latency[j] = r.small()
			}
		}
	}
	if err := r.end(); err != nil {
		return nil, nil, err
	}
	return routes, keys, nil
}
