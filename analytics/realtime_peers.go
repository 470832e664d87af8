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

// Apply puts parts, published by instance, into that instance's ring: a
// PartSeconds replaces its slot's seconds, a PartTables the slot's route
// and key tables. The parts of one slot are applied under one lock of it,
// so a concurrent read sees all of them or none: pass a slot's seconds and
// tables of the same publish together, and a reader never shows counts
// newer than the top lists. A part of a slot older than the one the ring
// holds at its place is ignored. It returns an error wrapping ErrBadPart,
// changing nothing, when a part does not decode.
func (p *Peers) Apply(instance string, parts ...RealtimePart) error {
	decoded := make([]decodedPart, len(parts))
	for i, part := range parts {
		if err := p.decode(part, &decoded[i]); err != nil {
			return fmt.Errorf("instance %s, slot %s: %w", instance, part.Start.UTC().Format(time.RFC3339), err)
		}
	}
	for len(decoded) > 0 {
		n := decoded[0].n
		run := 1
		for run < len(decoded) && decoded[run].n == n {
			run++
		}
		p.applySlot(p.ring(instance, n), n, decoded[:run])
		decoded = decoded[run:]
	}
	return nil
}

// decodedPart is a RealtimePart decoded, ready to go into slot n.
type decodedPart struct {
	n       int64
	kind    RealtimePartKind
	seconds [slotSeconds]counters
	routes  []routeEntry
	keys    []subjectEntry
}

// decode checks and decodes part into d.
func (p *Peers) decode(part RealtimePart, d *decodedPart) error {
	unix := part.Start.Unix()
	if unix%slotSeconds != 0 || part.Start.Nanosecond() != 0 {
		return fmt.Errorf("%w: slot start is not on the %s grid", ErrBadPart, SlotWidth)
	}
	d.n, d.kind = unix/slotSeconds, part.Kind
	var err error
	switch part.Kind {
	case PartSeconds:
		err = decodeSeconds(part.Payload, &d.seconds)
	case PartTables:
		d.routes, d.keys, err = decodeTables(part.Payload, p.maxRoutes, p.maxKeys)
	default:
		err = fmt.Errorf("%w: unknown kind %d", ErrBadPart, part.Kind)
	}
	return err
}

// applySlot puts parts, all of slot n, into ring under the slot's lock.
func (p *Peers) applySlot(ring *peerRing, n int64, parts []decodedPart) {
	s := &ring.slots[ringIndex(n, len(ring.slots))]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.at > n:
		return
	case s.at < n:
		s.reset(n)
	}
	for i := range parts {
		d := &parts[i]
		if d.kind == PartSeconds {
			s.seconds = d.seconds
			continue
		}
		s.routes.reset()
		for i := range d.routes {
			if e, _ := s.routes.entry(d.routes[i].name, len(d.routes)); e != nil {
				*e = d.routes[i]
			}
		}
		s.keys.reset()
		for i := range d.keys {
			if e, _ := s.keys.entry(d.keys[i].name, len(d.keys)); e != nil {
				*e = d.keys[i]
			}
		}
	}
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
