package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
)

// ProxyOptions configure the sidecar reverse proxy.
type ProxyOptions struct {
	Upstream              *url.URL
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration // an upstream slower than this answers 504
	IdleConnTimeout       time.Duration
	MaxIdleConnsPerHost   int
	// MaxConnsPerHost bounds the lean path's upstream connections that
	// carry a request at once (see forward.go); more requests wait for one
	// to come free. Upgrades, Expect and large or streamed bodies go
	// through httputil.ReverseProxy and are not counted. 0 means
	// DefaultMaxConnsPerHost.
	MaxConnsPerHost int
	MaxBodyBytes    int64 // 0: unlimited
}

// DefaultMaxConnsPerHost is ProxyOptions.MaxConnsPerHost when unset.
const DefaultMaxConnsPerHost = 1024

// proxy forwards allowed requests upstream.
type proxy struct {
	gate     *gate
	upstream *upstreamPool          // the lean path; nil for a TLS upstream
	rp       *httputil.ReverseProxy // upgrades, Expect, large and streamed bodies
	rt       *http.Transport        // rp's
	maxBody  int64
	now      func() time.Time
	log      *slog.Logger
	pool     sync.Pool // *proxyExchange
	calls    sync.Pool // *ProxyCall
	// answerMaps lends the lean path's error answers a header map for
	// httpapi.ErrorAnswer to write in (errorFields).
	answerMaps sync.Pool // http.Header
	opts       ProxyOptions
	ids        *httpapi.RequestIDs // the lean path's (DecideProxy)
	kept       keptBytes           // the lean path's records' strings
}

// proxyExchange is the per-request state shared between the handler, the
// transport and the error handler. It is pooled, so a request costs no
// allocation for it.
type proxyExchange struct {
	rec         metrics.Record
	w           responseRecorder
	upstreamDur time.Duration
	errCategory metrics.ErrorCategory
	client      netip.Addr
	// identity and tier are what setUpstreamHeaders tells the upstream
	// of an allowed request.
	identity *keys.Identity
	tier     string
	// hv holds the values of the headers the gateway sets on this
	// request, the answer's and the upstream's: a fresh one a request,
	// as the header maps may outlive the exchange's return to the pool.
	hv *headerValues
	// body, d, start and path are kept for an answer whose body the
	// server sends after ServeHTTP returns (BodySender): its Close
	// records the request then.
	body  sentBody
	d     enforce.Decision
	start time.Time
	path  string
}

type exchangeKey struct{}

func newProxy(g *gate, o ProxyOptions, ids *httpapi.RequestIDs, now func() time.Time, log *slog.Logger) *proxy {
	p := &proxy{gate: g, maxBody: o.MaxBodyBytes, now: now, log: log, opts: o, ids: ids}
	p.pool.New = func() any { return new(proxyExchange) }
	p.calls.New = func() any { return new(ProxyCall) }
	p.answerMaps.New = func() any { return make(http.Header, 4) }
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // never route the sidecar through HTTP_PROXY
		DialContext:           dialer.DialContext,
		MaxIdleConns:          o.MaxIdleConnsPerHost * 2,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
		DisableCompression:    true, // pass bodies through as the upstream sent them
	}
	p.rt = transport
	upstream := o.Upstream
	maxConns := o.MaxConnsPerHost
	if maxConns <= 0 {
		maxConns = DefaultMaxConnsPerHost
	}
	p.upstream = newUpstreamPool(upstream, dialer, o.ResponseHeaderTimeout, o.IdleConnTimeout, o.MaxIdleConnsPerHost, maxConns)
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Host = pr.In.Host // the app sees the host the client asked for
			if ex, ok := pr.In.Context().Value(exchangeKey{}).(*proxyExchange); ok {
				p.setUpstreamHeaders(pr.Out.Header, pr.In, ex)
			}
		},
		Transport:    timedTransport{transport},
		BufferPool:   bufferPool{},
		ErrorHandler: p.upstreamError,
		ModifyResponse: func(resp *http.Response) error {
			if ex, ok := resp.Request.Context().Value(exchangeKey{}).(*proxyExchange); ok && resp.StatusCode >= 500 {
				ex.errCategory = metrics.ErrorUpstream5xx
			}
			return nil
		},
	}
	return p
}

// setForwarded tells the upstream where the request came from, on both
// forwarding paths: the X-Forwarded-For chain of in is passed on with the
// peer appended, as proxies do, so an app that trusts apiwarden reads the
// right-most hop. Host and proto come from the peer's X-Forwarded-*
// headers only when the peer is a trusted proxy (a TLS-terminating load
// balancer); otherwise they describe this connection. out may be
// in.Header: every value is read before it is written.
func setForwarded(out http.Header, hv *headerValues, in *http.Request, trusted enforce.TrustedProxies) {
	chain, host, proto := forwardedValues(hv, httpapi.PeerAddr(in), in.Header["X-Forwarded-For"], in.Header.Get("X-Forwarded-Host"),
		in.Header.Get("X-Forwarded-Proto"), in.Host, in.TLS != nil, trusted)
	hv.set(out, "X-Forwarded-For", chain)
	// A trusted peer's values are often there already: keep their slices.
	if out.Get("X-Forwarded-Host") != host {
		hv.set(out, "X-Forwarded-Host", host)
	}
	if out.Get("X-Forwarded-Proto") != proto {
		hv.set(out, "X-Forwarded-Proto", proto)
	}
}

// forwardedValues are the X-Forwarded-For, -Host and -Proto values the
// upstream is told (setForwarded), from the peer, the request's own
// X-Forwarded-* values (prior: every X-Forwarded-For value), its Host and
// whether it came over TLS. The chain's bytes are kept in hv.
func forwardedValues(hv *headerValues, peer netip.Addr, prior []string, xfHost, xfProto, reqHost string, tls bool, trusted enforce.TrustedProxies) (chain, host, proto string) {
	b := hv.room()
	for _, v := range prior {
		b = append(append(b, v...), ", "...)
	}
	chain = hv.value(peer.AppendTo(b))
	host, proto = xfHost, xfProto
	if host == "" || !trusted.Contains(peer) {
		host = reqHost
	}
	if proto == "" || !trusted.Contains(peer) {
		proto = "http"
		if tls {
			proto = "https"
		}
	}
	return chain, host, proto
}

// setUpstreamHeaders adds what the upstream is told of a request: where it
// came from (setForwarded), who the caller is (setIdentityHeaders) and the
// request id. Both forwarding paths call it after removing the hop-by-hop
// headers, so that a client's Connection header cannot name these away.
func (p *proxy) setUpstreamHeaders(out http.Header, in *http.Request, ex *proxyExchange) {
	setForwarded(out, ex.hv, in, p.gate.Trusted)
	setIdentityHeaders(headerMap(out), ex.hv, ex.identity, ex.tier)
	ex.hv.set(out, "X-Request-Id", httpapi.RequestIDFrom(in.Context()))
}

// ServeHTTP decides the request and, if allowed, forwards it.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	ex := p.pool.Get().(*proxyExchange)
	ex.w.reset(w)
	ex.upstreamDur, ex.errCategory, ex.client = 0, metrics.ErrorNone, httpapi.PeerAddr(r)
	ex.identity, ex.tier, ex.hv = nil, "", new(headerValues)

	path := enforce.CleanPath(r.URL.Path)
	if !p.gate.headerBytesOK(r) {
		httpapi.WriteError(&ex.w, r, p.log, httpapi.Errorf(httpapi.CodeHeadersTooLarge, "request headers are larger than %d bytes", p.gate.MaxHeaderBytes))
		p.done(ex, r, start, &enforce.Decision{}, path)
		return
	}
	routePath, e := p.gate.checkPath(escapedPath(r))
	if e != nil {
		httpapi.WriteError(&ex.w, r, p.log, e)
		p.done(ex, r, start, &enforce.Decision{}, path)
		return
	}
	key, _ := presentedKey(r.Header)
	f := newFacts(key, r.Method, routePath, r.URL.RawQuery, r.Header.Get("Origin"),
		p.gate.Trusted.ClientIP(ex.client, r.Header.Values("X-Forwarded-For"))) // ex.client is the peer until here
	ex.client = f.ClientIP
	d := p.gate.decide(start, &f)
	p.gate.setLimitValues(headerMap(w.Header()), ex.hv, &d, start)
	if !d.Allowed() {
		httpapi.WriteError(&ex.w, r, p.log, httpapi.Denial(d.Code))
		p.done(ex, r, start, &d, path)
		return
	}

	// The upstream sees who the caller is, never a key: the forwarding
	// path adds the identity headers (setUpstreamHeaders).
	ex.identity, ex.tier = d.Identity, d.Tier
	scrubHeaders(r.Header)
	uri := upstreamURI(r.URL, r.RequestURI, path)
	if p.maxBody > 0 {
		if r.ContentLength > p.maxBody {
			httpapi.WriteError(&ex.w, r, p.log, httpapi.Errorf(httpapi.CodePayloadTooLarge, "request body is larger than %d bytes", p.maxBody))
			p.done(ex, r, start, &d, path)
			return
		}
		r.Body = http.MaxBytesReader(&ex.w, r.Body, p.maxBody)
	}
	if p.lean(r) {
		ex.d, ex.start, ex.path = d, start, path
		if p.forward(ex, &ex.w, r, uri) {
			return // the body's Close calls done
		}
	} else {
		p.rp.ServeHTTP(&ex.w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex)))
	}
	p.done(ex, r, start, &d, path)
}

// upstreamURI is the request target the upstream is sent: the client's
// (uri) unless the query had a key in it or the path is not clean (path
// is enforce.CleanPath of u.Path), in which case u is changed and its
// target is rebuilt.
func upstreamURI(u *url.URL, uri, path string) string {
	if q, changed := scrubQuery(u.RawQuery); changed {
		u.RawQuery, u.ForceQuery = q, false
		uri = ""
	}
	if path != u.Path {
		u.Path, u.RawPath = path, ""
		uri = ""
	}
	if uri == "" || uri[0] != '/' {
		uri = u.RequestURI()
	}
	return uri
}

// done records the request and returns its exchange to the pool.
func (p *proxy) done(ex *proxyExchange, r *http.Request, start time.Time, d *enforce.Decision, path string) {
	p.finish(ex, r, start, d, path)
	p.pool.Put(ex)
}

// finish records the request.
func (p *proxy) finish(ex *proxyExchange, r *http.Request, start time.Time, d *enforce.Decision, path string) {
	p.record(&ex.rec, p.gate.recordRequestOf(r), start, d, ex.client, path, outcome{status: ex.w.status, bytes: ex.w.bytes,
		upstream: ex.upstreamDur, cacheStatus: cacheHeader(ex.w.Header()), category: ex.errCategory})
}

// outcome is how a proxied request ended, for its record.
type outcome struct {
	status      int
	bytes       int64
	upstream    time.Duration
	cacheStatus string // the answer's Cache-Status or X-Cache
	category    metrics.ErrorCategory
}

// record counts a proxied request for /metrics and records it in rec,
// which the caller owns (pooled).
func (p *proxy) record(rec *metrics.Record, r recordRequest, start time.Time, d *enforce.Decision, client netip.Addr, path string, o outcome) {
	latency := p.now().Sub(start)
	p.gate.observe("proxy", d, latency, o.upstream)
	if !p.gate.recorded(d) {
		return
	}
	p.gate.startRecord(rec, start, d, r, client, path)
	rec.Status = o.status
	rec.ResponseBytes = o.bytes
	rec.Latency = latency
	rec.UpstreamLatency = o.upstream
	rec.CacheStatus = metrics.ParseCacheStatus(o.cacheStatus)
	rec.ErrorCategory = o.category
	if rec.ErrorCategory == metrics.ErrorNone {
		rec.ErrorCategory = metrics.CategorizeError(o.status, rec.Decision)
	}
	p.gate.Recorder.Record(rec)
}

func cacheHeader(h http.Header) string {
	if v := h.Get("Cache-Status"); v != "" {
		return v
	}
	return h.Get("X-Cache")
}

// upstreamError answers 502 when the upstream cannot be reached and 504
// when it does not answer in time.
func (p *proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ex, _ := r.Context().Value(exchangeKey{}).(*proxyExchange)
	p.answerUpstreamError(w, r, err, ex)
}

func (p *proxy) answerUpstreamError(w http.ResponseWriter, r *http.Request, err error, ex *proxyExchange) {
	e, category := p.upstreamErrorOf(err)
	if ex != nil {
		ex.errCategory = category
	}
	httpapi.WriteError(w, r, p.log, e)
}

// upstreamErrorOf is the error answer and record category of a request
// whose forwarding failed with err: 504 for a timeout, 413 for a body
// over max_body_bytes, 502 for the rest.
func (p *proxy) upstreamErrorOf(err error) (*httpapi.Error, metrics.ErrorCategory) {
	var ne interface{ Timeout() bool } // net.Error, and clients' own timeouts that are not one
	var tooBig *http.MaxBytesError
	e := &httpapi.Error{Code: httpapi.CodeUpstreamUnreachable, Message: "the upstream service cannot be reached", Err: err}
	category := metrics.ErrorUpstreamUnreachable
	switch {
	case errors.As(err, &tooBig):
		e = httpapi.Errorf(httpapi.CodePayloadTooLarge, "request body is larger than %d bytes", p.maxBody)
		category = metrics.ErrorClient
	case errors.Is(err, ErrUnaskedUpgrade):
		e = &httpapi.Error{Code: httpapi.CodeUpstreamUnreachable, Message: "the upstream answered with a protocol switch nobody asked for", Err: err}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		category = metrics.ErrorClient
		e = &httpapi.Error{Code: httpapi.CodeUpstreamUnreachable, Message: "the client closed the request"}
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		e = &httpapi.Error{Code: httpapi.CodeUpstreamTimeout, Message: "the upstream service did not answer in time", Err: err}
		category = metrics.ErrorUpstreamTimeout
	}
	return e, category
}

// timedTransport measures how long the upstream takes to send headers.
type timedTransport struct{ base http.RoundTripper }

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	if ex, ok := req.Context().Value(exchangeKey{}).(*proxyExchange); ok {
		ex.upstreamDur = time.Since(start)
	}
	return resp, err
}

// bufferPool lends the proxy 32 KiB copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBuffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
