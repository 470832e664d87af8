package limiter

import (
	"strconv"
	"time"
)

// Reason says why a request was denied.
type Reason uint8

const (
	// ReasonNone: the request was admitted.
	ReasonNone Reason = iota
	// ReasonRateLimited: a bucket (hour, minute or route) lacks the tokens;
	// RetryAfter says when all of them will have them.
	ReasonRateLimited
	// ReasonQuotaExceeded: the monthly quota has no room for the cost;
	// RetryAfter runs to the start of the next month in the calendar's zone.
	ReasonQuotaExceeded
)

// String returns "none", "rate_limited" or "quota_exceeded".
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonRateLimited:
		return "rate_limited"
	case ReasonQuotaExceeded:
		return "quota_exceeded"
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// MaxBuckets is the most buckets one request is checked against: hour,
// minute and route.
const MaxBuckets = 3

// BucketState is one bucket as a decision left it.
type BucketState struct {
	Policy    string        // PolicyHour, PolicyMinute or PolicyRoute
	Limit     int64         // capacity now, after calendar scaling
	Remaining int64         // whole tokens left
	Window    time.Duration // time the bucket takes to refill from empty
	Reset     time.Duration // time until the bucket is full again; 0 when full
}

// Result is the decision on one request. It is a plain value holding no
// references into the limiter.
type Result struct {
	Allowed bool
	Reason  Reason
	// RetryAfter is set on denial: the time until every bucket holds the
	// cost, or until the month rolls over for ReasonQuotaExceeded.
	// InfDuration when the cost exceeds a bucket's capacity.
	RetryAfter time.Duration

	// Buckets[:NumBuckets] are the buckets that applied, in the order hour,
	// minute, route, each after the decision.
	Buckets    [MaxBuckets]BucketState
	NumBuckets int

	// MonthlyQuota and MonthlyUsed describe the monthly counter after the
	// decision; MonthlyQuota is 0 when the tier has none.
	MonthlyQuota int64
	MonthlyUsed  int64
}

// Applied returns the buckets that applied. The slice points into r.
func (r *Result) Applied() []BucketState { return r.Buckets[:r.NumBuckets] }

// Tightest returns the bucket with the fewest tokens remaining (on a tie,
// the one that takes longer to fill), which is what the RateLimit header
// reports. ok is false when no bucket applied.
func (r *Result) Tightest() (b BucketState, ok bool) {
	i := r.TightestIndex()
	if i < 0 {
		return BucketState{}, false
	}
	return r.Buckets[i], true
}

// TightestIndex is the index in Buckets of Tightest's bucket, or -1 when
// no bucket applied.
func (r *Result) TightestIndex() int {
	t := -1
	for i := range r.NumBuckets {
		c := &r.Buckets[i]
		if t < 0 || c.Remaining < r.Buckets[t].Remaining || (c.Remaining == r.Buckets[t].Remaining && c.Reset > r.Buckets[t].Reset) {
			t = i
		}
	}
	return t
}

// AppendPolicyHeader appends the value of the RateLimit-Policy header
// (IETF httpapi ratelimit-headers), e.g.
//
//	"hour";q=100;w=3600, "minute";q=10;w=60
//
// It appends nothing when no bucket applied and does not allocate when dst
// has room.
func (r *Result) AppendPolicyHeader(dst []byte) []byte {
	for i := range r.NumBuckets {
		b := &r.Buckets[i]
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, '"')
		dst = append(dst, b.Policy...)
		dst = append(dst, `";q=`...)
		dst = strconv.AppendInt(dst, b.Limit, 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, int64(b.Window/time.Second), 10)
	}
	return dst
}

// AppendRateLimitHeader appends the value of the RateLimit header for the
// tightest bucket, e.g.
//
//	"minute";r=7;t=23
//
// where t is the time until that bucket is full again, in whole seconds
// rounded up. It appends nothing when no bucket applied and does not
// allocate when dst has room.
func (r *Result) AppendRateLimitHeader(dst []byte) []byte {
	b, ok := r.Tightest()
	if !ok {
		return dst
	}
	dst = append(dst, '"')
	dst = append(dst, b.Policy...)
	dst = append(dst, `";r=`...)
	dst = strconv.AppendInt(dst, b.Remaining, 10)
	dst = append(dst, ";t="...)
	dst = strconv.AppendInt(dst, ceilSeconds(b.Reset), 10)
	return dst
}

// ceilSeconds rounds d up to whole seconds, as header fields need.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Usage is the state of a subject's tier buckets and monthly counter, read
// without consuming anything.
type Usage struct {
	// Tier is the tier whose limits were applied: the one asked for, or the
	// strictest one when that tier does not exist.
	Tier   string
	Hour   BucketState
	Minute BucketState
	// MonthlyUsed is the cost admitted this month; it is counted only for
	// tiers with a quota. MonthlyQuota is 0 when the tier has none.
	MonthlyUsed  int64
	MonthlyQuota int64
	// MonthlyReset is the time until the counter rolls over.
	MonthlyReset time.Duration
}
