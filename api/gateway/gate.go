package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
)

// Decider is what the entry points need of the enforcement engine.
type Decider interface {
	Decide(now time.Time, f *enforce.Facts) enforce.Decision
}

// RequestRecorder takes a record of every request that went through an
// entry point. It must not block (metrics.Recorder drops when full), nor
// keep rec once it returns: the entry points reuse their records.
type RequestRecorder interface {
	Record(rec *metrics.Record) bool
}

var (
	_ Decider         = (*enforce.Engine)(nil)
	_ RequestRecorder = (*metrics.Recorder)(nil)
)

// RequestObserver counts decided requests for /metrics.
type RequestObserver interface {
	ObserveRequest(entry, code, route, tier string, latency, upstream time.Duration)
}

// GateOptions configure the enforcement entry points.
type GateOptions struct {
	Engine   Decider
	Recorder RequestRecorder // nil: nothing is recorded
	Observer RequestObserver // nil: nothing is counted
	Trusted  enforce.TrustedProxies
	// Paths refuses request paths that upstreams read in different ways
	// (the zero value refuses them all) on every entry point.
	Paths enforce.PathRules
	// ServiceToken, when set, guards /v1/* (X-Apiwarden-Token); when
	// empty, /v1/* answers loopback peers only.
	ServiceToken string
	// AuthorizeRateLimitedStatus is 429, or 403 for nginx auth_request.
	AuthorizeRateLimitedStatus int
	// CountryHeader names the header a CDN puts the client's country in.
	CountryHeader string
	// MaxHeaderBytes: larger request headers are refused with 431.
	MaxHeaderBytes int
	// InternalSampleRate is the share of requests to internal routes
	// that are recorded (0 records none; they are still counted in /metrics).
	InternalSampleRate float64
}

// gate holds what the proxy, /v1/authorize and /v1/check share.
type gate struct {
	GateOptions
	serviceTokenHash [32]byte
	internalSeen     atomic.Uint64 // requests to internal routes, for sampling
	internalEvery    uint64        // record one in this many; 0: none
	// engine is Engine when it is the enforce.Engine, called directly so
	// that a request's facts stay on its goroutine's stack (an interface
	// call makes the compiler move them to the heap).
	engine *enforce.Engine
	// records lends recordDecision its records (*metrics.Record).
	records sync.Pool
	// policies formats each set of limits' RateLimit-Policy value once.
	policies limiter.PolicyTexts
}

func newGate(o GateOptions) *gate {
	g := &gate{GateOptions: o}
	g.engine, _ = o.Engine.(*enforce.Engine)
	g.records.New = func() any { return new(metrics.Record) }
	if o.ServiceToken != "" {
		g.serviceTokenHash = sha256.Sum256([]byte(o.ServiceToken))
	}
	if g.AuthorizeRateLimitedStatus == 0 {
		g.AuthorizeRateLimitedStatus = http.StatusTooManyRequests
	}
	if o.InternalSampleRate > 0 {
		g.internalEvery = uint64(math.Round(1 / min(o.InternalSampleRate, 1)))
	}
	return g
}

// decide asks the engine about a request's facts, which it does not keep.
// It is safe for concurrent use, as the engine is.
func (g *gate) decide(now time.Time, f *enforce.Facts) enforce.Decision {
	var d enforce.Decision
	g.decideInto(now, f, &d)
	return d
}

// decideInto is decide writing the decision into *d, for a caller deep in
// a stack: with an *enforce.Engine no frame holds a copy of a Decision.
func (g *gate) decideInto(now time.Time, f *enforce.Facts, d *enforce.Decision) {
	if g.engine != nil {
		g.engine.DecideInto(now, f, d)
		return
	}
	g.decideOther(now, f, d)
}

// decideOther asks a Decider that is not an *enforce.Engine into *d. It is
// its own frame so that the copy of f and a Decision are not on the stack
// of every proxied request (docs/BENCHMARKS.md, "Stacks per connection on
// the fasthttp proxy").
//
//go:noinline
func (g *gate) decideOther(now time.Time, f *enforce.Facts, d *enforce.Decision) {
	other := *f // another Decider may keep f: it gets a copy on the heap
	*d = g.Engine.Decide(now, &other)
}

// checkServiceToken guards /v1/*. With a service token, the caller must
// send it. Without one, only loopback clients are answered (protected
// mode, as Redis does without a password): the socket peer decides, never
// X-Forwarded-For, which any client can write.
func (g *gate) checkServiceToken(r *http.Request) *httpapi.Error {
	return g.serviceTokenError(httpapi.PeerAddr(r), r.Header.Get("X-Apiwarden-Token"))
}

// serviceTokenError is checkServiceToken over a request's socket peer and
// its X-Apiwarden-Token header, whichever server received it.
func (g *gate) serviceTokenError(peer netip.Addr, token string) *httpapi.Error {
	if g.ServiceToken == "" {
		if peer.IsLoopback() {
			return nil
		}
		return httpapi.Errorf(httpapi.CodeForbidden, "security.service_token is not set, so /v1 answers loopback clients only; "+
			"set a service token and send it as X-Apiwarden-Token")
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], g.serviceTokenHash[:]) != 1 {
		return httpapi.Errorf(httpapi.CodeUnauthorized, "send the service token as X-Apiwarden-Token")
	}
	return nil
}

// headerBytesOK enforces max_header_bytes with the JSON error body; the
// server's own limit (twice as large) only stops the absurd.
func (g *gate) headerBytesOK(r *http.Request) bool {
	return g.headerSizeOK(headerBytes(r))
}

// headerSizeOK says whether n bytes of request target and headers
// (Inbound.HeaderBytes) are within max_header_bytes.
func (g *gate) headerSizeOK(n int) bool {
	return g.MaxHeaderBytes <= 0 || n <= g.MaxHeaderBytes
}

// headerBytes counts a request's target and headers as
// Inbound.HeaderBytes says.
func headerBytes(r *http.Request) int {
	n := len(r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// presentedKey reads the key from X-API-Key or, when that is absent,
// Authorization: Bearer. X-API-Key comes first so that an app whose own
// users send JWTs in Authorization can take keys in X-API-Key side by
// side. fromAuthorization says which, so the proxy strips the right one.
func presentedKey(h http.Header) (key string, fromAuthorization bool) {
	return keyOf(h.Get("X-Api-Key"), h.Get("Authorization"))
}

// keyOf is presentedKey over the two header values.
func keyOf(apiKey, authorization string) (key string, fromAuthorization bool) {
	if apiKey != "" {
		return apiKey, false
	}
	if k, ok := httpapi.Bearer(authorization); ok {
		return k, true
	}
	return "", false
}

// setLimitHeaders writes the rate-limit headers README.md lists: the IETF
// draft's RateLimit-Policy and RateLimit, GitHub's X-RateLimit-*, and
// Retry-After on a 429.
func (g *gate) setLimitHeaders(h http.Header, d *enforce.Decision, now time.Time) {
	if d.Limited && d.Limit.NumBuckets > 0 {
		g.setLimitValues(headerMap(h), new(headerValues), d, now)
	}
}

// setLimitValues is setLimitHeaders with the values kept in hv: no
// allocation of its own while hv has room. The values that depend only
// on the limits (RateLimit-Policy, X-RateLimit-Limit) are formatted once
// per set of limits (limiter.PolicyTexts), the others per request.
func (g *gate) setLimitValues(h headerSink, hv *headerValues, d *enforce.Decision, now time.Time) {
	if !d.Limited || d.Limit.NumBuckets == 0 {
		return
	}
	l := &d.Limit
	text := g.policies.Of(l)
	h.setHeader(hv, "Ratelimit-Policy", text.Policy)
	h.setHeader(hv, "Ratelimit", hv.value(l.AppendRateLimitHeader(hv.room())))
	i := l.TightestIndex()
	t := &l.Buckets[i]
	h.setHeader(hv, "X-Ratelimit-Limit", text.Limits[i])
	h.setHeader(hv, "X-Ratelimit-Remaining", hv.value(strconv.AppendInt(hv.room(), t.Remaining, 10)))
	h.setHeader(hv, "X-Ratelimit-Reset", hv.value(strconv.AppendInt(hv.room(), ceilUnix(now.Add(t.Reset)), 10)))
	if d.Code.IsRateLimited() {
		h.setHeader(hv, "Retry-After", hv.value(strconv.AppendInt(hv.room(), retryAfterSeconds(d), 10)))
	}
}

// retryAfterSeconds rounds up, so a client that waits that long succeeds.
// A cost larger than a bucket can ever hold gets the longest window.
func retryAfterSeconds(d *enforce.Decision) int64 {
	ra := d.Limit.RetryAfter
	if ra == limiter.InfDuration {
		ra = time.Hour
		for _, b := range d.Limit.Applied() {
			ra = max(ra, b.Window)
		}
	}
	return int64(math.Ceil(ra.Seconds()))
}

// ceilUnix is t in Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// setIdentityHeaders tells the upstream (or the forward-auth caller) who
// the caller is: the key's identity, when one was found, and the tier
// whose limits applied. A key without an owner or scopes gets no
// X-Apiwarden-Owner or -Scopes header: the upstream parses every header
// it is sent, and a client's own copies are scrubbed either way
// (ScrubHeaderValue). A map's entries are slices of hv (headerMap).
func setIdentityHeaders(h headerSink, hv *headerValues, id *keys.Identity, tier string) {
	if id != nil {
		h.setHeader(hv, "X-Apiwarden-Key-Id", id.ID)
		if id.OwnerID != "" {
			h.setHeader(hv, "X-Apiwarden-Owner", id.OwnerID)
		}
		if id.ScopesHeader != "" {
			h.setHeader(hv, "X-Apiwarden-Scopes", id.ScopesHeader)
		}
	}
	if tier != "" {
		h.setHeader(hv, "X-Apiwarden-Tier", tier)
	}
}

// recorded says whether a decided request goes to the recorder: always,
// except on internal routes, of which one in internalEvery is kept.
func (g *gate) recorded(d *enforce.Decision) bool {
	if g.Recorder == nil {
		return false
	}
	if d.Route == nil || d.Route.Preset != enforce.Internal {
		return true
	}
	return g.internalEvery > 0 && g.internalSeen.Add(1)%g.internalEvery == 0
}

// observe counts a decided request for /metrics.
func (g *gate) observe(entry string, d *enforce.Decision, latency, upstream time.Duration) {
	if g.Observer == nil {
		return
	}
	route := ""
	if d.Route != nil {
		route = d.Route.Pattern
	}
	g.Observer.ObserveRequest(entry, d.Code.String(), route, d.Tier, latency, upstream)
}

// recordRequestOf is what the record of a net/http request takes from it.
func (g *gate) recordRequestOf(r *http.Request) recordRequest {
	country := ""
	if g.CountryHeader != "" {
		country = r.Header.Get(g.CountryHeader)
	}
	return recordRequest{id: httpapi.RequestIDFrom(r.Context()), method: r.Method,
		userAgent: r.Header.Get("User-Agent"), country: country, bytes: r.ContentLength}
}

// recordRequest is what a record takes from the request line and headers.
type recordRequest struct {
	id, method, userAgent, country string
	bytes                          int64 // -1: unknown
}

// startRecord starts the metrics record of a request from its parts,
// whichever server received it.
func (g *gate) startRecord(rec *metrics.Record, start time.Time, d *enforce.Decision, r recordRequest, client netip.Addr, path string) {
	*rec = metrics.Record{
		Time:         start,
		RequestID:    r.id,
		Method:       r.method,
		Path:         path,
		ClientIP:     client,
		UserAgent:    r.userAgent,
		RequestBytes: max(r.bytes, 0),
	}
	AttributeRecord(rec, d)
	if r.country != "" {
		rec.Country = countryCode(r.country)
	}
}

// AttributeRecord fills in what a decision says of a request's record:
// the decision code, the route pattern, the key and its owner, and the
// tier whose limits applied (the key's own when none did). Every entry
// point, and the demo's backfill, attributes records this way.
func AttributeRecord(rec *metrics.Record, d *enforce.Decision) {
	rec.Decision, rec.Tier = d.Code, d.Tier
	if d.Route != nil {
		rec.Route = d.Route.Pattern
	}
	if id := d.Identity; id != nil {
		rec.KeyID, rec.OwnerID = id.ID, id.OwnerID
		if rec.Tier == "" {
			rec.Tier = id.Tier
		}
	}
}

// countryCode returns a CDN's country header value as two upper-case
// characters (ISO 3166 alpha-2, or a CDN's own such as Cloudflare's XX and
// T1), or "" for anything else: without a CDN in front the header is the
// client's to write, and analytics should not group by free text.
func countryCode(v string) string {
	if len(v) != 2 {
		return ""
	}
	var b [2]byte
	for i := range 2 {
		c := v[i]
		switch {
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		default:
			return ""
		}
		b[i] = c
	}
	if b[0] == v[0] && b[1] == v[1] {
		return v
	}
	return string(b[:])
}
