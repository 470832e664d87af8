package analytics

import (
	"fmt"
	"sync"
	"time"
)

// Peers are the other instances' realtime rings, rebuilt from the parts
// they publish (Realtime.Parts), one ring per instance. Every read of the
// Realtime that owns them (Snapshot, Window) merges them slot by slot with
// its own ring, so in cluster mode the realtime answers and the alert
// evaluator's traffic are the whole cluster's. A peer's slot is read only
// while it is inside the window asked for, exactly as a local one: the
// data of an instance that stopped publishing ages out as its own would.
// Peers are safe for concurrent use; Apply and Forget take a write lock
// only to add or drop a ring.
type Peers struct {
	nslots             int
	maxRoutes, maxKeys int

	mu    sync.RWMutex
	rings map[string]*peerRing // by instance id
}

// peerRing is one instance's slots and the newest slot number applied to
// them, which Forget reads.
type peerRing struct {
	slots  []slot
	mu     sync.Mutex // guards newest
	newest int64
}

// Apply puts part, published by instance, into that instance's ring: a
// PartSeconds replaces the slot's seconds, a PartTables its route and key
// tables. A part of a slot older than the one the ring holds at its place
// is ignored. It returns an error wrapping ErrBadPart, changing nothing,
// for a part that does not decode.
func (p *Peers) Apply(instance string, part RealtimePart) error {
	unix := part.Start.Unix()
	if unix%slotSeconds != 0 || part.Start.Nanosecond() != 0 {
		return fmt.Errorf("%w: slot start %s is not on the %s grid", ErrBadPart, part.Start, SlotWidth)
	}
	n := unix / slotSeconds
	var seconds [slotSeconds]counters
	var routes []routeEntry
	var keys []subjectEntry
	var err error
	switch part.Kind {
	case PartSeconds:
		err = decodeSeconds(part.Payload, &seconds)
	case PartTables:
		routes, keys, err = decodeTables(part.Payload, p.maxRoutes, p.maxKeys)
	default:
		err = fmt.Errorf("%w: unknown kind %d", ErrBadPart, part.Kind)
	}
	if err != nil {
		return fmt.Errorf("instance %s, slot %s: %w", instance, part.Start.UTC().Format(time.RFC3339), err)
	}
	ring := p.ring(instance, n)
	s := &ring.slots[ringIndex(n, len(ring.slots))]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.at > n:
		return nil
	case s.at < n:
		s.reset(n)
	}
	if part.Kind == PartSeconds {
		s.seconds = seconds
		return nil
	}
	s.routes.reset()
	for i := range routes {
		if e, _ := s.routes.entry(routes[i].name, len(routes)); e != nil {
			*e = routes[i]
		}
	}
	s.keys.reset()
	for i := range keys {
		if e, _ := s.keys.entry(keys[i].name, len(keys)); e != nil {
			*e = keys[i]
		}
	}
	return nil
}

// ring returns instance's ring, making it on first use, with slot n
// counted as applied. Both happen under p.mu, so a Forget cannot drop the
// ring between the lookup and the update and leave the part in a ring
// nobody reads.
func (p *Peers) ring(instance string, n int64) *peerRing {
	p.mu.RLock()
	ring := p.rings[instance]
	if ring != nil {
		ring.mu.Lock()
		ring.newest = max(ring.newest, n)
		ring.mu.Unlock()
	}
	p.mu.RUnlock()
	if ring != nil {
		return ring
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ring = p.rings[instance]; ring == nil {
		ring = &peerRing{slots: make([]slot, p.nslots), newest: n}
		p.rings[instance] = ring
	}
	ring.newest = max(ring.newest, n)
	return ring
}

// Forget drops the rings of instances that published nothing from before
// to now, freeing their memory: an instance gone for longer than the
// ring's span has nothing left to show. Other readers are not disturbed
// beyond a write lock's moment.
func (p *Peers) Forget(before time.Time) {
	oldest := floorDiv(before.Unix(), slotSeconds)
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, ring := range p.rings {
		ring.mu.Lock()
		stale := ring.newest < oldest
		ring.mu.Unlock()
		if stale {
			delete(p.rings, id)
		}
	}
}

// Len returns how many instances' rings Peers hold.
func (p *Peers) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.rings)
}

// eachSlot calls fn, under the slot's lock, for slot n of every peer ring
// that holds it. It needs p.mu for reading.
func (p *Peers) eachSlot(n int64, fn func(s *slot)) {
	for _, ring := range p.rings {
		s := &ring.slots[ringIndex(n, len(ring.slots))]
		s.mu.Lock()
		if s.at == n {
			fn(s)
		}
		s.mu.Unlock()
	}
}
