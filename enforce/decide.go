// Package enforce makes the one decision every entry point shares —
// the sidecar proxy, forward auth and the check API — from the facts of a
// request: which route it hits, whether its key is good for it, and
// whether its limits have room. It knows nothing of HTTP.
package enforce

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
)

// Facts are what the entry points know of a request.
type Facts struct {
	HeaderKey string // from Authorization: Bearer or X-API-Key
	QueryKey  string // from ?api_key=, used only where the route allows it
	Method    string
	Path      string // cleaned (CleanPath)
	ClientIP  netip.Addr
	Origin    string
	Cost      int // 0: the route's cost
}

// Decision is the outcome for one request.
type Decision struct {
	Code  decision.Code
	Route *Route
	// Identity is the key's, when one was presented and found (also for
	// Expired and Revoked, so the request can be attributed); nil on
	// public and internal routes.
	Identity *keys.Identity
	// Tier is the tier whose limits applied ("" when none did).
	Tier string
	// Limited says the limiter was consulted; Limit then holds the bucket
	// states for the rate-limit headers.
	Limited bool
	Limit   limiter.Result
	// UsedQueryKey says the key came from ?api_key=, so the proxy strips it.
	UsedQueryKey bool
}

// Allowed reports whether the request may pass.
func (d *Decision) Allowed() bool { return d.Code.Allowed() }

// KeyVerifier is what the engine needs of the key service.
type KeyVerifier interface {
	Verify(now time.Time, presented string) (*keys.Identity, error)
	RecordDenial(now time.Time, keyID string, typ keys.EventType, detail string)
}

// RateLimiter is what the engine needs of the limiter (local or Redis).
type RateLimiter interface {
	AllowAt(now time.Time, req limiter.Request) limiter.Result
}

var (
	_ KeyVerifier = (*keys.Service)(nil)
	_ RateLimiter = (*limiter.Limiter)(nil)
)

// Policy is the reloadable part of the engine's configuration.
type Policy struct {
	Routes *Routes
	// PublicTier limits client IPs on public routes without their own tier.
	PublicTier string
	// StrictestTier limits admin routes without their own tier.
	StrictestTier string
	// IPv6Prefix groups IPv6 clients of public routes by network (see
	// ClientNetwork); 0 means DefaultIPv6Prefix.
	IPv6Prefix int
}

// Engine decides requests. It is safe for concurrent use; SetPolicy swaps
// the route table atomically (a config reload) without blocking Decide.
type Engine struct {
	keys   KeyVerifier
	limits RateLimiter
	policy atomic.Pointer[Policy]
}

// NewEngine builds an engine.
func NewEngine(k KeyVerifier, l RateLimiter, p Policy) *Engine {
	e := &Engine{keys: k, limits: l}
	e.SetPolicy(p)
	return e
}

// SetPolicy replaces the routes and tier choices for requests that start
// after it returns.
func (e *Engine) SetPolicy(p Policy) { e.policy.Store(&p) }

// Policy returns the policy in force.
func (e *Engine) Policy() *Policy { return e.policy.Load() }

// MayWait reports whether Decide may wait on another process: true when
// its rate limiter is not the in-process limiter.Limiter (limiter.Redis
// awaits a round trip, up to its timeout, then falls back). Key checks
// never wait: keys.Service reads its own store, which is a mirror of the
// shared keys in a cluster. Safe for concurrent use.
func (e *Engine) MayWait() bool {
	_, local := e.limits.(*limiter.Limiter)
	return e.limits != nil && !local
}

// Decide checks a request at now. Checks run in the order a client can
// act on: key present, key valid, key allowed here (IP, origin, scopes),
// then limits. Only requests that pass the key checks touch the limiter,
// so rejected keys cannot drain a customer's quota.
func (e *Engine) Decide(now time.Time, f *Facts) Decision {
	var d Decision
	e.DecideInto(now, f, &d)
	return d
}

// DecideInto is Decide writing the decision into *d, which it overwrites
// whole. It is for callers deep in a stack: neither its frame nor theirs
// holds a Decision (docs/BENCHMARKS.md, "Stacks per connection on the
// fasthttp proxy").
func (e *Engine) DecideInto(now time.Time, f *Facts, d *Decision) {
	pol := e.policy.Load()
	route := pol.Routes.Match(f.Method, f.Path)
	*d = Decision{Route: route, Code: decision.Valid}
	cost := f.Cost
	if cost <= 0 {
		cost = max(route.Cost, 1)
	}

	switch route.Preset {
	case Internal:
		return
	case Public:
		tier := route.Tier
		if tier == "" {
			tier = pol.PublicTier
		}
		e.limit(now, d, limiter.NetworkSubject(ClientNetwork(f.ClientIP, pol.IPv6Prefix)), tier, cost, false)
		return
	}

	presented := f.HeaderKey
	if presented == "" && route.AllowQueryKey && f.QueryKey != "" {
		presented, d.UsedQueryKey = f.QueryKey, true
	}
	if presented == "" {
		d.Code = decision.MissingKey
		return
	}
	id, err := e.keys.Verify(now, presented)
	d.Identity = id
	switch {
	case err == nil:
	case errors.Is(err, keys.ErrExpired):
		d.Code = decision.Expired
		return
	case errors.Is(err, keys.ErrRevoked):
		d.Code = decision.Revoked
		return
	default: // malformed or unknown
		d.Code = decision.NotFound
		d.Identity = nil
		return
	}
	if !id.AllowsIP(f.ClientIP) {
		e.keys.RecordDenial(now, id.ID, keys.EventIPDenied, f.ClientIP.String())
		d.Code = decision.IPNotAllowed
		return
	}
	if !id.AllowsOrigin(f.Origin) {
		e.keys.RecordDenial(now, id.ID, keys.EventOriginDenied, truncate(f.Origin, 200))
		d.Code = decision.OriginNotAllowed
		return
	}
	if !id.HasScopes(route.Scopes) || (route.Preset == Admin && !id.HasScopes(adminScope)) {
		e.keys.RecordDenial(now, id.ID, keys.EventScopeDenied, route.Pattern)
		d.Code = decision.InsufficientScope
		return
	}

	tier := id.Tier
	if route.Preset == Admin {
		tier = route.Tier
		if tier == "" {
			tier = pol.StrictestTier
		}
	}
	e.limit(now, d, limiter.KeySubject(id.ID), tier, cost, route.Preset == HighVolume)
}

var adminScope = []string{"admin"}

// limit asks the limiter for d's buckets and sets d's limit and code. d
// is a pointer, not a value passed and returned, so that Decide's frame
// holds no copies of it: Decide is on the deepest stack of a proxied
// request (docs/BENCHMARKS.md, "Stacks per connection on the fasthttp
// proxy").
func (e *Engine) limit(now time.Time, d *Decision, subject limiter.Subject, tier string, cost int, routeOnly bool) {
	req := limiter.Request{Subject: subject, Tier: tier, Cost: cost, RouteOnly: routeOnly}
	if d.Route.RequestsPerMinute > 0 {
		req.Route, req.RoutePerMinute = d.Route.bucket, d.Route.RequestsPerMinute
	}
	d.Tier, d.Limited = tier, true
	d.Limit = e.limits.AllowAt(now, req)
	switch d.Limit.Reason {
	case limiter.ReasonRateLimited:
		d.Code = decision.RateLimited
	case limiter.ReasonQuotaExceeded:
		d.Code = decision.QuotaExceeded
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
