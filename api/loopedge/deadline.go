package loopedge

import (
	"time"
)

// Timeouts are the [server] and [proxy] bounds a loop applies; zero is
// none.
type Timeouts struct {
	// ReadHeader bounds a request head, from its first byte (or the
	// connection's accept) to its end: the slowloris defence.
	ReadHeader time.Duration
	// Idle bounds the wait for the next request of a keep-alive
	// connection.
	Idle time.Duration
	// Write bounds a request's exchange from its decision to the last
	// byte of its answer written to the client.
	Write time.Duration
	// ResponseHeader bounds the wait for the upstream answer's head: the
	// gateway answers 504 after it.
	ResponseHeader time.Duration
}

// errResponseHeaderTimeout is an upstream that did not answer within
// Timeouts.ResponseHeader: a timeout, which the gateway answers 504.
var errResponseHeaderTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string { return "loopedge: upstream answer head timed out" }
func (timeoutError) Timeout() bool { return true }

// The kinds of deadline a pair has; each bounds a phase, and a pair may
// be in two at once (the upstream's answer head is awaited within the
// exchange's write_timeout).
type phase int

const (
	phaseHead     phase = iota // reading a request head, or waiting for a new connection's first
	phaseIdle                  // waiting for the next request
	phaseUpstream              // waiting for the upstream's answer head
	phaseWrite                 // an exchange from its decision on, or writing what is queued
	phases
)

// Each kind of deadline has one duration a loop, so the deadlines of a
// kind fall in the order they were set: a list a kind, in that order,
// gives the next one in O(1), and epoll_wait sleeps until the nearest of
// the lists' heads, instead of a timer a request or a scan of every
// pair. A pair is in a kind's list while it is bound by that kind's
// deadline, and moves to the list's tail when its deadline moves on
// (arm): a list holds each pair once, so it is as long as the loop's
// pairs, not as its requests in the last timeout's span.

// deadlineLink is a pair's place in one kind's list: its deadline as
// the pair's phase sets it (set) and as the list keeps it (at, no
// earlier than the one before it), both zero when it is not in the list.
type deadlineLink struct {
	set, at    time.Time
	prev, next *pair
}

// deadlineList is one kind's pairs, earliest deadline first.
type deadlineList struct{ head, tail *pair }

// add puts p at the list's tail with deadline at, kept no earlier than
// the tail's. A phase that starts after
// the time its deadline counts from (the idle wait after an answer that
// took long to write, a pipelined head read during the answer before
// it) would otherwise break the order; its deadline then falls that much
// later.
func (q *deadlineList) add(p *pair, k phase, at time.Time) {
	link := &p.deadlines[k]
	*link = deadlineLink{set: at, at: at, prev: q.tail}
	if q.tail != nil && at.Before(q.tail.deadlines[k].at) {
		link.at = q.tail.deadlines[k].at
	}
	if q.tail != nil {
		q.tail.deadlines[k].next = p
	} else {
		q.head = p
	}
	q.tail = p
}

// remove takes p out of the list, if it is in it.
func (q *deadlineList) remove(p *pair, k phase) {
	link := &p.deadlines[k]
	if link.at.IsZero() {
		return
	}
	if link.prev != nil {
		link.prev.deadlines[k].next = link.next
	} else {
		q.head = link.next
	}
	if link.next != nil {
		link.next.deadlines[k].prev = link.prev
	} else {
		q.tail = link.prev
	}
	*link = deadlineLink{}
}

// deadline is when p's phase of kind k ends, zero when p is not in such
// a phase or the kind has no bound.
func (l *loop) deadline(p *pair, k phase) time.Time {
	t := &l.s.timeouts
	quiet := !p.ex.busy && !p.deciding && len(p.client.out) == 0 // no exchange, no decision out, nothing to write
	var from time.Time
	var d time.Duration
	var bound bool
	switch k {
	case phaseUpstream:
		from, d, bound = p.ex.sent, t.ResponseHeader, p.ex.busy && !p.ex.headDone
	case phaseWrite:
		from, d, bound = p.since, t.Write, !quiet
	case phaseHead:
		from, d, bound = p.headFrom, t.ReadHeader, quiet && (len(p.client.in) > 0 || p.fresh)
	case phaseIdle:
		from, d, bound = p.since, t.Idle, quiet && len(p.client.in) == 0 && !p.fresh
	}
	if !bound || d <= 0 {
		return time.Time{}
	}
	return from.Add(d)
}

// arm moves p in the kinds' lists where its deadline changed since its
// last arm; called after every step of p, and at its accept.
func (l *loop) arm(p *pair) {
	for k := range phases {
		at := l.deadline(p, k)
		if at == p.deadlines[k].set {
			continue
		}
		l.deadlines[k].remove(p, k)
		if !at.IsZero() {
			l.deadlines[k].add(p, k, at)
		}
	}
}

// disarm takes p out of every list, when it closes.
func (l *loop) disarm(p *pair) {
	for k := range phases {
		l.deadlines[k].remove(p, k)
	}
}

// scan ends the phases whose deadline is past at l.now, earliest first
// within a kind: an upstream that did not answer in time is answered 504
// by the gateway; a slow head, an idle connection, a stalled exchange
// close the pair.
func (l *loop) scan() {
	l.expireIdle()
	for k := range phases {
		q := &l.deadlines[k]
		for q.head != nil && !l.now.Before(q.head.deadlines[k].at) {
			p := q.head
			q.remove(p, k)
			if k != phaseUpstream {
				l.closePair(p)
				continue
			}
			l.lend(p)
			l.upstreamGone(p, errResponseHeaderTimeout)
			l.step(p)
			l.settle(p)
		}
	}
}

// waitTimeout is epoll_wait's timeout in milliseconds from now: until
// the nearest deadline or the oldest idle upstream connection's expiry
// (pool.go), rounded up, or none (-1).
func (l *loop) waitTimeout(now time.Time) int {
	nearest := l.idleExpiry()
	for k := range phases {
		if p := l.deadlines[k].head; p != nil && (nearest.IsZero() || p.deadlines[k].at.Before(nearest)) {
			nearest = p.deadlines[k].at
		}
	}
	if nearest.IsZero() {
		return -1
	}
	return max(int((nearest.Sub(now)+time.Millisecond-1)/time.Millisecond), 0)
}
