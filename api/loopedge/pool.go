package loopedge

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A client connection holds an upstream connection only while a request
// of its is in flight, from its decision to its answer relayed whole.
// The idle ones wait in their loop's pool, newest on top, so that the
// warm ones are reused and the rest age out after proxy.idle_conn_timeout.
// A request takes the newest, or dials.

// idleConn is an upstream connection waiting in a loop's pool.
type idleConn struct {
	fd    int
	since time.Time // when it went idle
}

// slots bounds the requests in flight to the upstream across a server's
// loops (proxy.max_conns_per_host, gateway.Slots' meaning on the other
// edges): a request waits for a slot up to response_header_timeout,
// then is answered 504 (deadline.go).
//
// The count is one atomic shared by the loops, so the bound is exact
// whichever loops the requests are on, and a request under it costs a
// compare-and-swap to take its slot and an add and a load to give it
// back. A request over it queues its loop in turn; a slot given back
// while any wait goes, with the upstream connection that carried it, to
// the oldest waiting request's loop, which is woken: no request waits
// while a slot is free on another loop, and none is overtaken by a
// newer one. Safe for concurrent use.
type slots struct {
	limit   int64
	used    atomic.Int64 // slots taken, those granted to a waiting request included
	waiting atomic.Int64 // len(queue), read without mu
	mu      sync.Mutex
	queue   []*loop // the loop of each waiting request, oldest first
}

// tryTake takes a free slot: false when none is.
func (s *slots) tryTake() bool {
	for u := s.used.Load(); u < s.limit; u = s.used.Load() {
		if s.used.CompareAndSwap(u, u+1) {
			return true
		}
	}
	return false
}

// take takes a slot for a request of l: true when one was free, else the
// request waits, queued behind those waiting already, and l is granted a
// slot later (grant).
func (s *slots) take(l *loop) bool {
	if s.waiting.Load() == 0 && s.tryTake() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 && s.tryTake() {
		return true
	}
	s.queue = append(s.queue, l)
	s.waiting.Add(1)
	// A slot given back since the check above saw nobody waiting (give):
	// grant what is free now.
	for len(s.queue) > 0 && s.tryTake() {
		s.grantLocked(-1, l)
	}
	return false
}

// give gives back a slot of a request of loop from. fd is the upstream
// connection that carried it, out of from's epoll set, or -1: when a
// request waits, the slot and fd go to its loop and give returns true;
// else the caller keeps fd.
func (s *slots) give(from *loop, fd int) bool {
	s.used.Add(-1)
	// take adds to waiting before it looks for a free slot again, and
	// give takes from used before it looks for a waiting request: one of
	// the two sees the other.
	if s.waiting.Load() == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 || !s.tryTake() {
		return false
	}
	s.grantLocked(fd, from)
	return fd >= 0
}

// grantLocked gives a slot taken, with fd, to the oldest waiting request
// and wakes its loop, unless the loop is from, the caller's, or was woken
// for a grant it has not yet taken: a loop takes its grants at the end
// of each event batch, and does not block while it has any (loop.wait).
// s.mu is held.
func (s *slots) grantLocked(fd int, from *loop) {
	to := s.queue[0]
	s.queue = s.queue[1:]
	s.waiting.Add(-1)
	to.granted = append(to.granted, fd)
	if !to.hasGrant.Swap(true) && to != from {
		to.notify()
	}
}

// cancel takes a request of l that no longer waits (its client left, its
// wait timed out) out of the queue: false when a slot was granted to it
// already, which l then finds in its grants with nobody to take it.
func (s *slots) cancel(l *loop) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.queue) - 1; i >= 0; i-- {
		if s.queue[i] == l {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			s.waiting.Add(-1)
			return true
		}
	}
	return false
}

// grants takes the slots granted to l's waiting requests, with their
// connections (-1: none).
func (s *slots) grants(l *loop, into []int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	into = append(into, l.granted...)
	l.granted = l.granted[:0]
	l.hasGrant.Store(false)
	return into
}

// send has the request decided on p, its head in p.upstream.out, go
// upstream once it holds a slot: now, or when one is granted
// (serveGrants). The wait counts against response_header_timeout from
// the decision on (deadline.go).
func (l *loop) send(p *pair) {
	if !l.s.slots.take(l) {
		p.waiting = true
		l.waiters = append(l.waiters, p)
		return
	}
	p.slot = true
	l.attach(p, -1)
	if p.upstream.fd < 0 {
		l.fail(p, errUpstreamRefused)
	}
}

// attach gives p an upstream connection: fd, granted with its slot, else
// the newest idle one of the pool, else a new one (dial).
func (l *loop) attach(p *pair, fd int) {
	if fd >= 0 {
		if l.adopt(p, fd) {
			return
		}
	}
	for len(l.idle) > 0 {
		ic := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if l.pooled[ic.fd] = false; l.stale(ic) {
			_ = unix.Close(ic.fd)
			continue
		}
		p.upstream = endpoint{fd: ic.fd, events: unix.EPOLLIN, in: p.upstream.in[:0], out: p.upstream.out}
		l.put(p, ic.fd)
		return
	}
	l.dial(p)
}

// adopt registers fd, an upstream connection handed over from a loop's
// slot, as p's: false when it cannot be watched (then closed).
func (l *loop) adopt(p *pair, fd int) bool {
	p.upstream = endpoint{fd: fd, events: unix.EPOLLIN, in: p.upstream.in[:0], out: p.upstream.out}
	if l.add(&p.upstream) != nil {
		_ = unix.Close(fd)
		p.upstream.fd = -1
		return false
	}
	l.put(p, fd)
	return true
}

// stale says whether an idle connection has been idle longer than
// proxy.idle_conn_timeout.
func (l *loop) stale(ic idleConn) bool {
	return l.s.idleTimeout > 0 && l.now.Sub(ic.since) > l.s.idleTimeout
}

// letGo ends p's hold on its upstream connection and on its slot when
// its exchange has ended: a connection that may carry another request
// (reusable) goes with the slot to a request waiting for one, on
// whichever loop, or back to the pool; any other is closed. A request
// still waiting for a slot leaves the queue.
func (l *loop) letGo(p *pair, reusable bool) {
	if p.waiting {
		l.unwait(p)
	}
	fd, events := p.upstream.fd, p.upstream.events
	if fd >= 0 {
		l.pairs[fd] = nil
		if !reusable || l.draining.Load() {
			_ = unix.Close(fd)
			fd = -1
		}
	}
	p.upstream = endpoint{fd: -1, in: p.upstream.in[:0], out: p.upstream.out[:0]}
	p.connecting = false
	if p.slot {
		p.slot = false
		l.giveSlot(fd, events)
		return
	}
	l.idleAgain(fd, events)
}

// giveSlot gives back a slot with fd, a reusable upstream connection, or
// -1: to a request waiting for one, or fd to the pool. events is fd's
// interest in the loop's epoll set, 0 when it is in none.
func (l *loop) giveSlot(fd int, events uint32) {
	if fd < 0 || l.s.slots.waiting.Load() == 0 {
		l.s.slots.give(l, -1)
		l.idleAgain(fd, events)
		return
	}
	if events != 0 {
		// Out of this loop's epoll set before another loop may add it.
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	if !l.s.slots.give(l, fd) {
		l.idleAgain(fd, 0)
	}
}

// idleAgain puts fd, if any, in the pool, watched for reading alone: its
// close or a stray byte. events is its interest in the loop's epoll set,
// 0 when it is in none.
func (l *loop) idleAgain(fd int, events uint32) {
	if fd < 0 {
		return
	}
	var err error
	switch events {
	case 0:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
	case unix.EPOLLIN:
	default:
		err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
	}
	if err != nil {
		_ = unix.Close(fd)
		return
	}
	l.pool(fd)
}

// pool puts fd, watched for reading alone, on top of the loop's idle
// connections, closing it when the pool is full.
func (l *loop) pool(fd int) {
	if len(l.idle) >= l.s.maxIdle {
		_ = unix.Close(fd)
		return
	}
	l.idle = append(l.idle, idleConn{fd: fd, since: l.now})
	for fd >= len(l.pooled) {
		l.pooled = append(l.pooled, false)
	}
	l.pooled[fd] = true
}

// unwait takes p, which waits for a slot, out of the loop's waiting
// requests and the server's queue.
func (l *loop) unwait(p *pair) {
	p.waiting = false
	for i, w := range l.waiters {
		if w == p {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			break
		}
	}
	l.s.slots.cancel(l)
}

// serveGrants sends the requests waiting on this loop that were granted a
// slot, oldest first. A grant whose request no longer waits is given
// back, its connection with it.
func (l *loop) serveGrants() {
	if !l.hasGrant.Load() {
		return
	}
	l.grantBuf = l.s.slots.grants(l, l.grantBuf[:0])
	for _, fd := range l.grantBuf {
		if len(l.waiters) == 0 {
			l.giveSlot(fd, 0)
			continue
		}
		p := l.waiters[0]
		l.waiters = l.waiters[1:]
		p.waiting, p.slot = false, true
		p.ex.sent = l.now // response_header_timeout runs again from here, as after gateway.Slots' wait
		l.lend(p)
		l.attach(p, fd)
		if p.upstream.fd < 0 {
			l.fail(p, errUpstreamRefused)
		}
		l.step(p)
		l.settle(p)
	}
}

// endGrants closes the connections granted to this loop when it ends,
// and gives their slots back.
func (l *loop) endGrants() {
	for _, fd := range l.s.slots.grants(l, nil) {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		l.s.slots.give(l, -1)
	}
}

// streaming gives back the slot of a request whose answer is a stream
// (chunked, or an event stream), as the other edges do
// (api/gateway/forward.go): it may last for hours and must not keep the
// next request waiting. Its connection stays with it to its end.
func (l *loop) streaming(p *pair) {
	if !p.slot {
		return
	}
	stream := p.ex.answer.chunked
	for i := 0; !stream && i < len(p.ex.answer.fields); i++ {
		f := &p.ex.answer.fields[i]
		stream = string(f.name) == "Content-Type" && bytes.HasPrefix(f.value, []byte("text/event-stream"))
	}
	if stream {
		p.slot = false
		l.giveSlot(-1, 0)
	}
}

// idleEvent handles an event of an idle upstream connection: the
// upstream closed it, or sent what nobody asked for; either way it is
// closed and leaves the pool.
func (l *loop) idleEvent(fd int) {
	if fd >= len(l.pooled) || !l.pooled[fd] {
		return
	}
	for i, ic := range l.idle {
		if ic.fd == fd {
			l.idle = append(l.idle[:i], l.idle[i+1:]...)
			break
		}
	}
	l.pooled[fd] = false
	_ = unix.Close(fd)
}

// expireIdle closes the pool's connections idle longer than
// proxy.idle_conn_timeout: the oldest are at the bottom.
func (l *loop) expireIdle() {
	n := 0
	for n < len(l.idle) && l.stale(l.idle[n]) {
		l.pooled[l.idle[n].fd] = false
		_ = unix.Close(l.idle[n].fd)
		n++
	}
	if n > 0 {
		l.idle = append(l.idle[:0], l.idle[n:]...)
	}
}

// idleExpiry is when the pool's oldest connection has been idle for
// proxy.idle_conn_timeout, zero when none expires.
func (l *loop) idleExpiry() time.Time {
	if len(l.idle) == 0 || l.s.idleTimeout <= 0 {
		return time.Time{}
	}
	return l.idle[0].since.Add(l.s.idleTimeout)
}

// closeIdle closes every connection of the pool, as a drain begins and
// when the loop ends.
func (l *loop) closeIdle() {
	for _, ic := range l.idle {
		l.pooled[ic.fd] = false
		_ = unix.Close(ic.fd)
	}
	l.idle = l.idle[:0]
}
