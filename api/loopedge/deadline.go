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

// scanEvery is how often a loop looks for connections past their
// deadline: a deadline fires up to this late. One pass over a loop's
// pairs, a comparison each, instead of a timer a connection moved at
// every request.
const scanEvery = 100 * time.Millisecond

// errResponseHeaderTimeout is an upstream that did not answer within
// Timeouts.ResponseHeader: a timeout, which the gateway answers 504.
var errResponseHeaderTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string { return "loopedge: upstream answer head timed out" }
func (timeoutError) Timeout() bool { return true }

// The phases of a pair a deadline bounds.
type phase int

const (
	phaseHead     phase = iota // reading a request head, or waiting for a new connection's first
	phaseIdle                  // waiting for the next request
	phaseUpstream              // waiting for the upstream's answer head
	phaseWrite                 // relaying an answer, or writing what is queued
)

// deadline is when p's current phase ends, zero for never.
func (l *loop) deadline(p *pair) (time.Time, phase) {
	t := &l.s.timeouts
	var at time.Time
	var d time.Duration
	var ph phase
	switch {
	case p.deciding: // a decision bounded by write_timeout, as the exchange it starts
		at, d, ph = p.since, t.Write, phaseWrite
	case p.ex.busy && !p.ex.headDone:
		at, d, ph = p.ex.sent, t.ResponseHeader, phaseUpstream
	case p.ex.busy || len(p.client.out) > 0:
		at, d, ph = p.since, t.Write, phaseWrite
	case len(p.client.in) > 0 || p.fresh:
		at, d, ph = p.headFrom, t.ReadHeader, phaseHead
	default:
		at, d, ph = p.since, t.Idle, phaseIdle
	}
	if d <= 0 {
		return time.Time{}, ph
	}
	return at.Add(d), ph
}

// scan ends the phases past their deadline, once every scanEvery: an
// upstream that did not answer in time is answered 504 by the gateway;
// a slow head, an idle connection, a stalled answer close the pair.
func (l *loop) scan() {
	if l.now.Before(l.nextScan) {
		return
	}
	l.nextScan = l.now.Add(scanEvery)
	for fd, p := range l.pairs {
		if p == nil || fd != p.client.fd {
			continue // each pair once, by its client's fd
		}
		at, ph := l.deadline(p)
		if at.IsZero() || l.now.Before(at) {
			continue
		}
		if ph == phaseUpstream {
			l.upstreamGone(p, errResponseHeaderTimeout)
			l.step(p)
			continue
		}
		l.closePair(p)
	}
}

// waitTimeout is epoll_wait's timeout in milliseconds: until the next
// scan while any pair is open, else none (-1).
func (l *loop) waitTimeout() int {
	if l.open == 0 {
		return -1
	}
	return max(int(time.Until(l.nextScan)/time.Millisecond), 1)
}
