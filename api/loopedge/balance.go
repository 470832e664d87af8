package loopedge

import (
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// Every loop polls the shared listener, and which loop takes a new
// connection is the kernel's and the scheduler's choice: one loop took
// 55 of wrk's 64 connections in a run, the other 10, and the first
// loop's connections waited on it while the second idled
// (docs/BENCHMARKS.md, "The event-loop edge's cost a request (thirteenth
// session)"). So the loops serve accepted connections in turn: the
// accepting loop keeps a connection whose turn is its own and queues the
// others on their loop, which it wakes. The hand-over costs a write and a
// read of an eventfd a connection, none a request.

// accepted is a client connection one loop accepted for another.
type accepted struct {
	fd   int
	peer netip.Addr
}

// inbox is the connections other loops accepted for a loop. Safe for
// concurrent use.
type inbox struct {
	mu     sync.Mutex
	conns  []accepted
	closed bool // the loop ended: it takes no more
}

// put queues c; false once the inbox is closed.
func (b *inbox) put(c accepted) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns = append(b.conns, c)
	return true
}

// take appends the queued connections to into[:0] and empties the inbox,
// and closes it for good when end is set.
func (b *inbox) take(into []accepted, end bool) []accepted {
	b.mu.Lock()
	defer b.mu.Unlock()
	into = append(into[:0], b.conns...)
	b.conns = b.conns[:0]
	b.closed = b.closed || end
	return into
}

// place has the loop whose turn it is serve the connection cfd from
// peer: l itself, or another loop, woken to take it from its inbox. A
// loop that has ended leaves its turn to l.
func (l *loop) place(cfd int, peer netip.Addr) {
	loops := l.s.running // set before the loops start, unchanged while they run
	to := loops[l.s.turn.Add(1)%uint32(len(loops))]
	if to != l && to.inbox.put(accepted{fd: cfd, peer: peer}) {
		to.notify()
		return
	}
	l.serveClient(cfd, peer)
}

// serveQueued serves the connections other loops queued for l; a loop
// that drains or stops closes them, as its listener would refuse them.
func (l *loop) serveQueued() {
	l.queued = l.inbox.take(l.queued, false)
	for _, c := range l.queued {
		if l.draining.Load() || l.stopNow.Load() {
			_ = unix.Close(c.fd)
			continue
		}
		l.serveClient(c.fd, c.peer)
	}
}

// closeInbox closes the inbox and the connections still queued in it,
// when the loop ends.
func (l *loop) closeInbox() {
	for _, c := range l.inbox.take(nil, true) {
		_ = unix.Close(c.fd)
	}
}
