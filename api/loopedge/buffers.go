package loopedge

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// An idle connection holds no buffer. A loop reads into its scratch
// buffer, and a connection keeps of what it read only what is left of a
// partial head or body (keep); its write buffers are lent from the
// loop's free list while it has something to write, and given back
// once written (settle). So 10,000 idle keep-alive connections cost
// their pair and its exchange's small slices, not 32 KiB of buffers
// each, and a loop's buffers come back as its connections go idle.

const (
	// scratchSize is a loop's read buffer: the most one read takes.
	scratchSize = 64 << 10
	// lentSize is a write buffer lent from a loop's free list.
	lentSize = 64 << 10
	// maxFree is how many buffers a loop keeps for lending; more given
	// back go to the garbage collector.
	maxFree = 16
	// maxKeptSmall is the most a connection keeps in a buffer of its own
	// size rather than a lent one: a request waiting for a slot (pool.go)
	// keeps its head so, not a lent 64 KiB.
	maxKeptSmall = 4 << 10
)

// buffer is a write buffer from the free list, or a new one.
func (l *loop) buffer() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b
	}
	return make([]byte, 0, lentSize)
}

// release gives *b back to the free list when it is one of the loop's
// lent buffers, and empties it.
func (l *loop) release(b *[]byte) {
	if cap(*b) == lentSize && len(l.free) < maxFree {
		l.free = append(l.free, (*b)[:0])
	}
	*b = nil
}

// lend gives p's endpoints write buffers for an event's handling.
func (l *loop) lend(p *pair) {
	if p.client.out == nil {
		p.client.out = l.buffer()
	}
	if p.upstream.out == nil {
		p.upstream.out = l.buffer()
	}
}

// settle ends an event's handling of p: what is left in the scratch
// buffer is copied into a buffer of its endpoint's own, empty write
// buffers are given back and small remainders copied out of lent ones;
// a closed pair gives back every buffer.
func (l *loop) settle(p *pair) {
	for _, ep := range [2]*endpoint{&p.client, &p.upstream} {
		if p.closed {
			ep.in = nil
			l.release(&ep.out)
			continue
		}
		if l.borrowed(ep.in) {
			if len(ep.in) == 0 {
				ep.in = nil
			} else {
				ep.in = append([]byte(nil), ep.in...)
			}
		}
		switch n := len(ep.out); {
		case n == 0:
			l.release(&ep.out)
		case n <= maxKeptSmall && cap(ep.out) == lentSize:
			kept := append([]byte(nil), ep.out...)
			l.release(&ep.out)
			ep.out = kept
		}
	}
}

// borrowed says whether b is a view of the loop's scratch buffer: reads
// fill it from its start, and consume keeps a buffer's start.
func (l *loop) borrowed(b []byte) bool {
	return cap(b) > 0 && unsafe.SliceData(b) == unsafe.SliceData(l.scratch)
}

// read reads what ep's fd has into ep.in; false when the peer closed or
// failed. What ep kept of earlier reads is moved into the scratch
// buffer first, when it fits in half of it; more grows ep's own buffer.
func (l *loop) read(ep *endpoint) bool {
	buf := ep.in
	if len(buf) <= len(l.scratch)/2 {
		buf = append(l.scratch[:0], buf...)
		ep.in = buf
	} else if cap(buf)-len(buf) < minRead {
		grown := make([]byte, len(buf), max(2*cap(buf), len(buf)+minRead))
		copy(grown, buf)
		buf = grown
		ep.in = buf
	}
	n, err := readRaw(ep.fd, buf[len(buf):cap(buf)])
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil || n == 0 {
		return false
	}
	ep.in = buf[:len(buf)+n]
	return true
}
