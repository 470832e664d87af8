package limiter

import (
	"math"
	"time"
)

// InfDuration is the RetryAfter of a request whose cost exceeds a bucket's
// whole capacity: waiting cannot admit it at the current limits.
const InfDuration = time.Duration(math.MaxInt64)

// The windows over which each kind of bucket refills completely.
const (
	HourWindow   = time.Hour
	MinuteWindow = time.Minute
	RouteWindow  = time.Minute
)

// Policy names, as they appear in BucketState.Policy and the RateLimit headers.
const (
	PolicyHour   = "hour"
	PolicyMinute = "minute"
	PolicyRoute  = "route"
)

// bucket is one token bucket. Instead of a token count and the time it was
// measured, it stores the instant the bucket will be full again (like the
// theoretical arrival time of GCRA): tokens(now) = capacity - (full-now)/interval.
// Refill is then implied by time and never accumulated, so stepping through
// fixed times gives exact integer answers, and a stored state stays valid
// however long it sits on disk.
type bucket struct {
	full     int64 // unix ns at which the bucket is full again; <= now means full
	capacity int64 // the capacity full was measured against; 0 = never used
}

// limit is the size of a bucket at the moment: capacity tokens refilled
// evenly over window.
type limit struct {
	capacity int64
	interval int64 // ns to refill one token: window / capacity, rounded down
	span     int64 // capacity * interval: the largest debt, about window
	window   time.Duration
}

func newLimit(capacity int64, window time.Duration) limit {
	if capacity < 1 {
		capacity = 1
	}
	if capacity > int64(window) {
		capacity = int64(window) // at most one token per nanosecond
	}
	interval := int64(window) / capacity
	return limit{capacity: capacity, interval: interval, span: capacity * interval, window: window}
}

// scaled returns the capacity base*mult rounded down, at least 1.
func scaled(base int64, mult float64) int64 {
	if mult == 1 {
		return base
	}
	c := math.Floor(float64(base) * mult)
	switch {
	case c < 1:
		return 1
	case c > math.MaxInt64/2:
		return math.MaxInt64 / 2
	}
	return int64(c)
}

// rescale converts b to the capacity of lim, keeping its tokens clamped to
// the new capacity: a reduction applies at once, an increase refills
// gradually at the new rate. The conversion is made at the instant from
// (when the capacity changed, as far as the caller knows; clamped to now),
// so its result does not depend on when the subject is next seen. A
// never-used bucket starts full. It is pure; the caller holds whatever lock
// guards b.
func (b bucket) rescale(lim limit, from, now int64) bucket {
	if b.capacity == lim.capacity {
		return b
	}
	if b.capacity == 0 {
		return bucket{capacity: lim.capacity}
	}
	from = min(from, now)
	tokens := float64(b.capacity)
	if debt := b.full - from; debt > 0 {
		tokens -= float64(debt) / float64(int64(lim.window)/b.capacity)
	}
	tokens = max(0, min(tokens, float64(lim.capacity)))
	out := bucket{capacity: lim.capacity}
	if missing := float64(lim.capacity) - tokens; missing > 0 {
		// Round rather than ceil: a whole number of missing tokens must
		// give back exactly that many, not one more through float error.
		out.full = from + int64(math.Round(missing*float64(lim.interval)))
	}
	return out
}

// wait returns how long until b holds cost tokens: 0 when it holds them
// now, InfDuration (as ns) when cost exceeds the capacity. b must already
// be rescaled to lim.
func (b bucket) wait(lim limit, cost, now int64) int64 {
	if cost > lim.capacity {
		return int64(InfDuration)
	}
	// After the debit the debt would be max(full, now) + cost*interval - now;
	// it may not exceed span.
	over := max(b.full, now) + cost*lim.interval - now - lim.span
	return max(over, 0)
}

// take debits cost tokens. The caller has checked wait(...) == 0.
func (b bucket) take(lim limit, cost, now int64) bucket {
	b.full = max(b.full, now) + cost*lim.interval
	return b
}

// remaining is the whole number of tokens in b at now.
func (b bucket) remaining(lim limit, now int64) int64 {
	debt := b.full - now
	if debt <= 0 {
		return lim.capacity
	}
	r := lim.capacity - (debt+lim.interval-1)/lim.interval
	return max(r, 0)
}

// state describes b at now for a Result or Usage.
func (b bucket) state(policy string, lim limit, now int64) BucketState {
	return BucketState{
		Policy:    policy,
		Limit:     lim.capacity,
		Remaining: b.remaining(lim, now),
		Window:    lim.window,
		Reset:     time.Duration(max(b.full-now, 0)),
	}
}

// isFull reports whether b carries no information at now: a fresh bucket
// would be the same.
func (b bucket) isFull(now int64) bool { return b.full <= now }
