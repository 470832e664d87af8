package limiter

import (
	"strconv"
	"sync/atomic"
	"time"
)

// PolicyTexts formats the parts of the rate-limit headers that depend
// only on which limits applied — the RateLimit-Policy value and each
// bucket's limit in decimal — once per set of limits rather than once per
// request. A tier's limits change only with its calendar rules, a
// configuration reload or a route's own limit, so a running server sees
// a handful of sets; each is formatted the first time it is seen and
// kept in a table of policySlots slots, chosen by a hash of the limits.
// A set whose two slots hold other sets replaces one of them, so the
// table never grows; only sets that keep evicting each other are
// formatted (and allocate) more than once.
//
// The zero value is ready to use. It is safe for concurrent use and
// takes no lock: a slot is an atomic pointer to a text never changed
// after it is stored.
type PolicyTexts struct {
	slots [policySlots]atomic.Pointer[PolicyText]
}

// PolicyText is what the rate-limit headers say of a set of limits. It is
// never changed once PolicyTexts.Of returned it.
type PolicyText struct {
	// Policy is the RateLimit-Policy value (Result.AppendPolicyHeader).
	Policy string
	// Limits[i] is the limit of the set's bucket i, in decimal.
	Limits [MaxBuckets]string
	shape  policyShape
}

// policyShape is what the header texts depend on: each applied bucket's
// policy name, limit and window.
type policyShape struct {
	n       int
	buckets [MaxBuckets]policyBucket
}

type policyBucket struct {
	policy string
	limit  int64
	window time.Duration
}

// policySlots is the table's size, a power of two: far more than the
// tiers times calendar scalings times route limits of a configuration.
const policySlots = 256

// Of returns the texts of r's applied buckets. It allocates only when the
// set of limits is not in the table.
func (p *PolicyTexts) Of(r *Result) *PolicyText {
	shape := policyShape{n: r.NumBuckets}
	h := uint64(r.NumBuckets)
	for i := range r.NumBuckets {
		b := &r.Buckets[i]
		shape.buckets[i] = policyBucket{policy: b.Policy, limit: b.Limit, window: b.Window}
		// The policy names are left out of the hash (the comparison
		// below reads them): limits and windows tell sets apart.
		h = (h^uint64(b.Limit))*0x9e3779b97f4a7c15 ^ uint64(b.Window)*0xff51afd7ed558ccd
	}
	h ^= h >> 29
	first := &p.slots[h%policySlots]
	second := &p.slots[(h+1)%policySlots]
	for _, slot := range [2]*atomic.Pointer[PolicyText]{first, second} {
		if t := slot.Load(); t != nil && t.shape == shape {
			return t
		}
	}
	t := &PolicyText{Policy: string(r.AppendPolicyHeader(nil)), shape: shape}
	for i := range r.NumBuckets {
		t.Limits[i] = strconv.FormatInt(r.Buckets[i].Limit, 10)
	}
	if !second.CompareAndSwap(nil, t) {
		first.Store(t)
	}
	return t
}
