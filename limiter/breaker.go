package limiter

import (
	"sync"
	"sync/atomic"
	"time"
)

// Circuit breaker states.
const (
	breakerClosed   int32 = iota // calls go to Redis
	breakerOpen                  // calls are decided locally until the cool-down ends
	breakerHalfOpen              // one probe call is in flight; the rest are decided locally
)

// breaker stops calling Redis after threshold consecutive failures, for
// coolDown, then lets one call through as a probe: its success closes the
// breaker, its failure opens it again. The closed state, the common one,
// costs one atomic load per call.
type breaker struct {
	state     atomic.Int32
	failures  atomic.Int32 // consecutive, while closed
	opens     atomic.Uint64
	threshold int32
	coolDown  time.Duration

	mu    sync.Mutex // serialises transitions
	until int64      // unix ns at which an open breaker lets a probe through
}

// allow reports whether a call at now may go to Redis. When it returns true
// for an open breaker whose cool-down has ended, the caller is the probe
// and must report success or failure.
func (b *breaker) allow(now int64) bool {
	switch b.state.Load() {
	case breakerClosed:
		return true
	case breakerHalfOpen:
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() == breakerOpen && now >= b.until {
		b.state.Store(breakerHalfOpen)
		return true
	}
	return false
}

// probe is allow for a timer rather than a request: it lets a probe
// through only when the breaker is open and its cool-down has ended (the
// breaker is then half-open and the caller must report the outcome).
// Otherwise it reports how long to wait before asking again: until the
// cool-down ends, or a whole cool-down while the breaker is closed or
// another probe is in flight.
func (b *breaker) probe(now int64) (due bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state.Load() != breakerOpen:
		return false, b.coolDown
	case now < b.until:
		return false, time.Duration(b.until - now)
	}
	b.state.Store(breakerHalfOpen)
	return true, 0
}

// success records a call that worked and reports whether it closed the
// breaker.
func (b *breaker) success() (closed bool) {
	if b.state.Load() == breakerClosed && b.failures.Load() == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	closed = b.state.Load() != breakerClosed
	b.failures.Store(0)
	b.state.Store(breakerClosed)
	return closed
}

// failure records a failed call at now and reports whether it opened the
// breaker.
func (b *breaker) failure(now int64) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case breakerClosed:
		if b.failures.Add(1) < b.threshold {
			return false
		}
	case breakerOpen:
		return false // a call that started before the breaker opened
	}
	b.state.Store(breakerOpen)
	b.until = now + int64(b.coolDown)
	b.failures.Store(0)
	b.opens.Add(1)
	return true
}

func breakerStateName(s int32) string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerOpen:
		return "open"
	}
	return "half-open"
}
