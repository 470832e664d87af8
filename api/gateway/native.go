package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/metrics"
)

// The proxy for a server that forwards requests itself (api/fastedge's
// lean path, over fasthttp's request and client): DecideProxy decides a
// request as ServeHTTP does, from a ProxyInbound rather than an
// *http.Request, and says what to send upstream and to answer; the
// ProxyCall it returns records the request once the server is done with
// it. The rules stay here: the decision, the answers, the headers the
// upstream is told, the target rewriting and the record are ServeHTTP's
// own; the server scrubs and filters headers with ScrubHeaderValue,
// ForwardedRequestHeader and ForwardedResponseHeader.

// ProxyInbound is what DecideProxy reads of a request: the Inbound forward
// auth reads, plus what forwarding needs. Its strings may be views of a
// server's buffers: they must stay valid until the call is finished,
// and DecideProxy copies what the request's record keeps.
type ProxyInbound struct {
	Inbound
	// Target is the request target as the client sent it, in origin form
	// ("/path?query"); Inbound.Path and RawQuery are its two parts.
	Target string
	Host   string
	// ForwardedHost and ForwardedProto are the first X-Forwarded-Host and
	// X-Forwarded-Proto values ("" when absent).
	ForwardedHost, ForwardedProto string
}

// A ProxyCall is a request DecideProxy allowed, from its decision to its
// record. One goroutine uses it at a time; Finish or Failed ends it and
// returns it to a pool, after which it must not be used.
type ProxyCall struct {
	p      *proxy
	req    recordRequest
	start  time.Time
	d      enforce.Decision
	f      enforce.Facts // the decision's input: a field, not a local, to keep it off the stack under the decision
	client netip.Addr
	path   string
	rec    metrics.Record
	// key is the header key the decision verified, "" when there was
	// none (ScrubHeaderValue).
	key string
	// hv holds the values DecideProxy set in resp and up for the
	// allowed request: they are valid until the call ends.
	hv headerValues
	// Target is the request target to send upstream: the client's, or
	// rebuilt when the query carried a key or the path was not clean.
	Target string
}

// ProxyOptions are the options the proxy was built with (zero without
// a proxy).
func (g *Gateway) ProxyOptions() ProxyOptions {
	if g.proxy == nil {
		return ProxyOptions{}
	}
	return g.proxy.opts
}

// DecideProxy decides a proxied request. It sets the answer's own headers
// in resp (rate-limit headers, and an error answer's) and, for an allowed
// request, the headers the upstream is told in up (X-Forwarded-For, -Host
// and -Proto, the identity headers, X-Request-Id), which replace any of
// the request's own of those names; both lists are empty on the call
// (Fields.Reset). It names the request: in.RequestID, the caller's
// X-Request-Id or "", becomes the request's id (httpapi.RequestIDs.Keep),
// valid for as long as the caller keeps it.
//
// The values it sets in resp and up for an allowed request are the
// call's, valid until the call ends: the server resets both lists
// before it calls Finish (Failed gives resp values of its own again, for
// the answer written after it). A refused request's values are its own.
//
// It returns the call of an allowed request, to send upstream; or nil and
// the answer of a refused one (431, a refused path, a denial, a body over
// max_body_bytes), already recorded; or ok false, with nothing done, for a
// target the server must serve through Handler instead (one net/http would
// read differently or refuse). It is safe for concurrent use.
func (g *Gateway) DecideProxy(resp, up *Fields, in *ProxyInbound) (call *ProxyCall, a Answer, ok bool) {
	// The three steps are frames of their own, so that only this small one
	// is on the stack under the decision, the deepest call of a proxied
	// request (docs/BENCHMARKS.md, "Stacks per connection on the fasthttp
	// proxy").
	p := g.proxy
	c, decoded, u, ok := p.openCall(in)
	if !ok {
		return nil, Answer{}, false
	}
	if e := p.admit(c, in); e != nil {
		return nil, c.refuse(resp, in, e), true
	}
	p.gate.decideInto(c.start, &c.f, &c.d)
	return p.allowCall(c, resp, up, in, decoded, u)
}

// openCall takes a call from the pool for in and notes what its record
// keeps; ok is false for a target the server must serve through Handler.
//
//go:noinline
func (p *proxy) openCall(in *ProxyInbound) (c *ProxyCall, decoded string, u *url.URL, ok bool) {
	decoded, u, ok = splitProxyTarget(in.Target)
	if !ok {
		return nil, "", nil, false
	}
	c = p.calls.Get().(*ProxyCall)
	c.p, c.start, c.client = p, p.now(), in.Peer
	// Apart: in the tuple assignment the 240-byte zero Decision was built
	// in this frame first, on the proxy's deepest path (docs/BENCHMARKS.md,
	// "Stacks per connection on the fasthttp proxy").
	c.d = enforce.Decision{}
	c.req, c.path = p.keptRequest(in, enforce.CleanPath(decoded))
	in.RequestID = c.req.id
	return c, decoded, u, true
}

// admit refuses headers over max_header_bytes and paths servers read in
// different ways, and otherwise gathers the request's facts into c.f.
//
//go:noinline
func (p *proxy) admit(c *ProxyCall, in *ProxyInbound) *httpapi.Error {
	if !p.gate.headerSizeOK(in.HeaderBytes) {
		return httpapi.Errorf(httpapi.CodeHeadersTooLarge, "request headers are larger than %d bytes", p.gate.MaxHeaderBytes)
	}
	routePath, e := p.gate.checkPath(in.Path)
	if e != nil {
		return e
	}
	key, _ := keyOf(in.Header.APIKey, in.Header.Authorization)
	c.f = newFacts(key, in.Method, routePath, in.RawQuery, in.Header.Origin, p.gate.Trusted.ClientIP(in.Peer, in.Header.ForwardedFor))
	c.client = c.f.ClientIP
	return nil
}

// allowCall writes the rate-limit headers of c's decision and either
// refuses c or rewrites its target and names the headers the upstream is
// told; DecideProxy's results.
//
//go:noinline
func (p *proxy) allowCall(c *ProxyCall, resp, up *Fields, in *ProxyInbound, decoded string, u *url.URL) (*ProxyCall, Answer, bool) {
	if !c.d.Allowed() || p.maxBody > 0 && in.ContentLength > p.maxBody {
		return nil, p.refuseDecided(c, resp, in), true
	}
	hv := &c.hv
	p.gate.setLimitValues(resp, hv, &c.d, c.start)
	if c.d.Identity != nil && !c.d.UsedQueryKey {
		c.key = c.f.HeaderKey
	}
	c.Target = in.Target
	if _, changed := scrubQuery(in.RawQuery); changed || c.path != decoded {
		if u == nil {
			u, _ = url.ParseRequestURI(in.Target) // splitProxyTarget saw it parse
		}
		c.Target = upstreamURI(u, in.Target, c.path)
	}
	chain, host, proto := forwardedValues(hv, in.Peer, in.Header.ForwardedFor, in.ForwardedHost, in.ForwardedProto, in.Host, false, p.gate.Trusted)
	up.Set("X-Forwarded-For", chain)
	up.Set("X-Forwarded-Host", host)
	up.Set("X-Forwarded-Proto", proto)
	up.Set("X-Request-Id", in.RequestID)
	setIdentityHeaders(up, hv, c.d.Identity, c.d.Tier)
	return c, Answer{}, true
}

// refuseDecided refuses c, decided and denied or with a body over
// max_body_bytes. Its answer is written after the call ends, so its
// header values are its own, not c's.
func (p *proxy) refuseDecided(c *ProxyCall, resp *Fields, in *ProxyInbound) Answer {
	p.gate.setLimitValues(resp, new(headerValues), &c.d, c.start)
	e := httpapi.Denial(c.d.Code)
	if c.d.Allowed() {
		e = httpapi.Errorf(httpapi.CodePayloadTooLarge, "request body is larger than %d bytes", p.maxBody)
	}
	return c.refuse(resp, in, e)
}

// ScrubHeaderValue is the package's ScrubHeaderValue for one header
// value of the call's request, which a server copies upstream: an
// X-Api-Key value, or Authorization's Bearer credentials, that are the
// key the decision verified are dropped without checking its format
// again, as the rule would drop them.
func (c *ProxyCall) ScrubHeaderValue(name, value string) (clean string, keep, changed bool) {
	if c.key != "" && c.carriesVerifiedKey(name, value) {
		return "", false, true
	}
	return ScrubHeaderValue(name, value)
}

// UpstreamValue is what the upstream is sent of one header of the call's
// request, name canonical, the framing headers (Host, Content-Length,
// Transfer-Encoding) left to the server: the value ForwardedRequestHeader
// and ScrubHeaderValue leave, with connection the request's Connection
// values; keep is false when either drops it or up, the headers the
// gateway tells the upstream (DecideProxy), replaces it. up is looked up
// last, so the headers dropped before (a key's, most often) cost no
// lookup. Every server's rule for a client's header on the lean path.
func (c *ProxyCall) UpstreamValue(name, value string, connection []string, up *Fields) (clean string, keep bool) {
	if value, keep = ForwardedRequestHeader(name, value, connection); !keep {
		return "", false
	}
	if clean, keep, _ = c.ScrubHeaderValue(name, value); !keep || up.Has(name) {
		return "", false
	}
	return clean, true
}

// carriesVerifiedKey says whether a request header value is the call's
// verified key where a client sends one: the whole X-Api-Key value, or
// the Bearer credentials of Authorization (carriesKey reads them so).
func (c *ProxyCall) carriesVerifiedKey(name, value string) bool {
	switch name {
	case "X-Api-Key":
		return value == c.key
	case "Authorization":
		k, ok := httpapi.Bearer(value)
		return ok && k == c.key
	}
	return false
}

// splitProxyTarget returns the decoded path of a target in origin form, as
// net/http's URL.Path has it, and the parsed URL when decoding needed it;
// ok is false for a target net/http would refuse or that is not in
// origin form. A target of printable ASCII without '%' or '#' decodes to
// itself and is not parsed.
func splitProxyTarget(target string) (decoded string, u *url.URL, ok bool) {
	if target == "" || target[0] != '/' {
		return "", nil, false
	}
	plain := true
	for i := 0; i < len(target) && plain; i++ {
		c := target[i]
		plain = c > ' ' && c < 0x7f && c != '%' && c != '#'
	}
	if plain {
		path, _, _ := strings.Cut(target, "?")
		return path, nil, true
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return "", nil, false
	}
	return u.Path, u, true
}

// keptRequest is what the record of in keeps of it, and its clean path:
// the record outlives the server's buffers, so the strings are copies,
// in p.kept. The request's id is made there too: the caller's
// X-Request-Id, or a new one (httpapi.RequestIDs.Keep).
func (p *proxy) keptRequest(in *ProxyInbound, path string) (recordRequest, string) {
	// The id's length is known once it is written; a new one is the
	// prefix and a counter, under 32 bytes.
	const newID = 32
	s := p.kept.take(len(in.RequestID) + newID + len(in.Header.UserAgent) + len(in.Header.Country) + len(path))
	b := p.ids.AppendKeep(s.room(), in.RequestID)
	idLen := len(b)
	b = append(append(append(b, in.Header.UserAgent...), in.Header.Country...), path...)
	all := p.kept.give(s, b)
	cut := func(n int) string {
		s := all[:n]
		all = all[n:]
		return s
	}
	r := recordRequest{id: cut(idLen), method: methodString(in.Method), userAgent: cut(len(in.Header.UserAgent)),
		country: cut(len(in.Header.Country)), bytes: in.ContentLength}
	return r, all
}

// methodString is m, the common methods without a copy. A switch, not a
// loop over an array of them, which would be on keptRequest's stack.
func methodString(m string) string {
	switch m {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodHead:
		return http.MethodHead
	case http.MethodOptions:
		return http.MethodOptions
	}
	return strings.Clone(m)
}

// refuse answers a request refused before it was forwarded, records it
// and ends the call.
func (c *ProxyCall) refuse(h *Fields, in *ProxyInbound, e *httpapi.Error) Answer {
	status := httpapi.StatusOf(e.Code)
	a := c.p.errorFields(h, in, e, status)
	c.end(status, int64(len(a.Body)), 0, "", metrics.ErrorNone)
	return a
}

// errorFields is an error answer of the proxy, its details logged, its
// headers set in h. httpapi writes an error answer's headers in a map:
// one lent by p, emptied into h, so a refusal allocates no map.
func (p *proxy) errorFields(h *Fields, in *ProxyInbound, e *httpapi.Error, status int) Answer {
	m := p.answerMaps.Get().(http.Header)
	httpapi.LogError(context.Background(), p.log, e, status, in.RequestID, in.Method, in.Path)
	a := Answer{Status: status, Body: httpapi.ErrorAnswer(m, e, status, in.RequestID)}
	h.setMap(m)
	clear(m)
	p.answerMaps.Put(m)
	return a
}

// Failed answers a request whose forwarding failed with err, as ServeHTTP
// does (502, 504 for a timeout), records it and ends the call. upstream is
// how long the attempt took; h is the answer's headers, DecideProxy's
// resp, which it sets again.
func (c *ProxyCall) Failed(h *Fields, in *ProxyInbound, err error, upstream time.Duration) Answer {
	// The answer is written after the call ends: h's rate-limit values,
	// views of c's until now, are made again apart.
	c.p.gate.setLimitValues(h, new(headerValues), &c.d, c.start)
	e, category := c.p.upstreamErrorOf(err)
	status := httpapi.StatusOf(e.Code)
	a := c.p.errorFields(h, in, e, status)
	c.end(status, int64(len(a.Body)), upstream, "", category)
	return a
}

// Finish records a request the upstream answered, once the answer was
// sent (or could not be): the status and body bytes sent, how long the
// upstream took to send its headers, and the answer's Cache-Status or
// X-Cache value. An upstream 5xx is recorded as such. It ends the call.
func (c *ProxyCall) Finish(status int, bytes int64, upstream time.Duration, cacheStatus string) {
	category := metrics.ErrorNone
	if status >= 500 {
		category = metrics.ErrorUpstream5xx
	}
	c.end(status, bytes, upstream, cacheStatus, category)
}

// end records the request and returns the call to the pool.
func (c *ProxyCall) end(status int, bytes int64, upstream time.Duration, cacheStatus string, category metrics.ErrorCategory) {
	p := c.p
	p.record(&c.rec, c.req, c.start, &c.d, c.client, c.path, outcome{status: status, bytes: bytes,
		upstream: upstream, cacheStatus: cacheStatus, category: category})
	*c = ProxyCall{}
	p.calls.Put(c)
}

// AddHeader notes one request header (name canonical, Host excepted) of
// a proxied request in in, as a server gathers them in one pass: the
// first value of each header DecideProxy reads, every X-Forwarded-For
// value, and the client's country from the header named country ("":
// none). It returns the header's bytes as HeaderBytes counts them. The
// strings are kept as they are: views, if the caller's are.
func (in *ProxyInbound) AddHeader(name, value, country string) int {
	hd := &in.Header
	var dst *string // the first value of a header the gateway reads
	switch name {
	case "X-Api-Key":
		dst = &hd.APIKey
	case "Authorization":
		dst = &hd.Authorization
	case "Origin":
		dst = &hd.Origin
	case "User-Agent":
		dst = &hd.UserAgent
	case "X-Forwarded-Host":
		dst = &in.ForwardedHost
	case "X-Forwarded-Proto":
		dst = &in.ForwardedProto
	case "X-Request-Id":
		dst = &in.RequestID
	case "X-Forwarded-For":
		hd.ForwardedFor = append(hd.ForwardedFor, value)
	}
	if dst != nil && *dst == "" {
		*dst = value
	}
	if country != "" && hd.Country == "" && strings.EqualFold(name, country) {
		hd.Country = value
	}
	return len(name) + len(value) + 4
}
