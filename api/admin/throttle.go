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
	maxThrottled             = 10_000 // client addresses remembered at most
)

// authThrottle slows down guessing of the admin token: after limit failed
// attempts from one client address within window, further attempts from
// it are refused unchecked until the window has passed. A right token
// clears the address's count. A strong token cannot be guessed anyway;
// this keeps a weak one ("change-me") from falling to a script.
type authThrottle struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	byIP map[netip.Addr]*authFailures
}

type authFailures struct {
	count int
	since time.Time // first failure of the current window
}

func newAuthThrottle(limit int, window time.Duration, now func() time.Time) *authThrottle {
	if limit == 0 {
		limit = DefaultAuthFailureLimit
	}
	if window <= 0 {
		window = DefaultAuthFailureWindow
	}
	return &authThrottle{limit: limit, window: window, now: now, byIP: map[netip.Addr]*authFailures{}}
}

// blocked reports whether ip has used up its attempts, and for how long.
func (t *authThrottle) blocked(ip netip.Addr) (time.Duration, bool) {
	if t.limit < 0 {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.byIP[ip]
	if f == nil {
		return 0, false
	}
	left := f.since.Add(t.window).Sub(t.now())
	if left <= 0 {
		delete(t.byIP, ip)
		return 0, false
	}
	return left, f.count >= t.limit
}

// failed counts a wrong token from ip.
func (t *authThrottle) failed(ip netip.Addr) {
	if t.limit < 0 {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.byIP[ip]
	if f == nil || now.Sub(f.since) >= t.window {
		if len(t.byIP) >= maxThrottled {
			t.forgetExpired(now)
		}
		f = &authFailures{since: now}
		t.byIP[ip] = f
	}
	f.count++
}

// succeeded clears ip's count.
func (t *authThrottle) succeeded(ip netip.Addr) {
	if t.limit < 0 {
		return
	}
	t.mu.Lock()
	delete(t.byIP, ip)
	t.mu.Unlock()
}

// forgetExpired drops finished windows, and when that is not enough an
// arbitrary half, so the table stays bounded under a flood of addresses.
func (t *authThrottle) forgetExpired(now time.Time) {
	for ip, f := range t.byIP {
		if now.Sub(f.since) >= t.window {
			delete(t.byIP, ip)
		}
	}
	for ip := range t.byIP {
		if len(t.byIP) < maxThrottled/2 {
			break
		}
		delete(t.byIP, ip)
	}
}
