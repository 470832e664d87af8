package admin

import (
	"net/netip"
	"sync"
	"time"
)

// Defaults of the admin-token throttle.
const (
	DefaultAuthFailureLimit  = 20
	DefaultAuthFailureWindow = 5 * time.Minute
	maxThrottled             = 10_000 // client networks remembered at most
)

// authThrottle slows down wrong admin tokens without locking anyone out.
// It counts wrong tokens per client network (an IPv4 address, an IPv6
// network of the configured prefix: one host often holds a whole /64);
// past limit within window, a wrong token is answered 429 with
// Retry-After instead of 401, until the window ends.
//
// It never refuses a token unchecked: the token is compared first, so
// the right one works whatever others sent from the same address (one
// NAT, one corporate proxy). What keeps the token from being guessed is
// its length, which config requires; the throttle tells a script that
// keeps failing to back off, and makes guessing visible in the log.
type authThrottle struct {
	limit  int // <= 0: off
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	byNet map[netip.Prefix]*authFailures
}

type authFailures struct {
	count int
	since time.Time // first failure of the current window
}

// failure is what the throttle says about one more wrong token.
type failure struct {
	over       bool          // past the limit: answer 429
	firstOver  bool          // the first failure past it in this window
	retryAfter time.Duration // until the window ends
}

// newAuthThrottle makes a throttle; limit 0 means DefaultAuthFailureLimit
// and a negative limit turns it off.
func newAuthThrottle(limit int, window time.Duration, now func() time.Time) *authThrottle {
	if limit == 0 {
		limit = DefaultAuthFailureLimit
	}
	if window <= 0 {
		window = DefaultAuthFailureWindow
	}
	return &authThrottle{limit: limit, window: window, now: now, byNet: map[netip.Prefix]*authFailures{}}
}

// failed counts a wrong token from client and says whether client is
// now past the limit.
func (t *authThrottle) failed(client netip.Prefix) failure {
	if t.limit <= 0 {
		return failure{}
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.byNet[client]
	if f == nil || now.Sub(f.since) >= t.window {
		if f == nil && len(t.byNet) >= maxThrottled {
			t.forgetExpired(now)
		}
		f = &authFailures{since: now}
		t.byNet[client] = f
	}
	f.count++
	return failure{
		over:       f.count > t.limit,
		firstOver:  f.count == t.limit+1,
		retryAfter: f.since.Add(t.window).Sub(now),
	}
}

// forgetExpired drops finished windows, and when that is not enough an
// arbitrary half, so the table stays bounded under a flood of addresses.
// It needs mu.
func (t *authThrottle) forgetExpired(now time.Time) {
	for client, f := range t.byNet {
		if now.Sub(f.since) >= t.window {
			delete(t.byNet, client)
		}
	}
	for client := range t.byNet {
		if len(t.byNet) < maxThrottled/2 {
			break
		}
		delete(t.byNet, client)
	}
}
