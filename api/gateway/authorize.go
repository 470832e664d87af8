package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/metrics"
)

// authorize is the forward-auth endpoint for nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth and Envoy ext_authz (HTTP service), on
// net/http: see Authorize.
func (s *Gateway) authorize(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	in := s.inboundFromHTTP(r, ps)
	writeAnswer(w, s.Authorize(w.Header(), &in))
	return nil
}

// Authorize decides a forward-auth request and records it. It answers 200
// with the identity headers, or the denial's status and body; every
// answer says its code in X-Apiwarden-Code (nginx passes headers of the
// auth response on, but not its body). It sets the answer's headers in h
// and returns the rest. It is safe for concurrent use.
//
// The original request is read from the headers each proxy sends:
// X-Forwarded-Method / X-Original-Method for the method and
// X-Forwarded-Uri / X-Original-URI for the URI; Envoy instead calls with
// the original method and appends the original path to the endpoint's
// (/v1/authorize/api/forms/1). The client is the right-most untrusted
// X-Forwarded-For hop, so the proxy must be in server.trusted_proxies.
func (s *Gateway) Authorize(h http.Header, in *Inbound) Answer {
	a, e := s.authorizeRequest(h, in)
	if e != nil {
		h["X-Apiwarden-Code"] = []string{e.Code}
		return s.errorAnswer(h, in, e, httpapi.StatusOf(e.Code))
	}
	return a
}

// errorAnswer is the answer of a request refused before a decision.
func (s *Gateway) errorAnswer(h http.Header, in *Inbound, e *httpapi.Error, status int) Answer {
	httpapi.LogError(context.Background(), s.log, e, status, in.RequestID, in.Method, in.Path)
	return Answer{Status: status, Body: httpapi.ErrorAnswer(h, e, status, in.RequestID)}
}

// original is what forward auth learns of the request it decides.
type original struct {
	method   string
	path     string // as the client sent it, percent-encoded
	rawQuery string
	// denyStatus is the status of a rate-limited request, and of a
	// refused path when it is 401 or 403; 0: the configured default.
	denyStatus int
}

// originalRequest reads the original method and URI. Proxies name them
// differently (nginx: X-Original-*, Traefik and Caddy: X-Forwarded-*) and
// pass the client's own headers along, so a client could add the name
// its proxy does not set. When both names are present they must agree,
// or the request is refused; otherwise one name would let a client pick
// the path it is judged on.
//
// Envoy instead calls /v1/authorize/<original path>?<original query>
// with the original method; the path is read from the request line, as
// sent, and the query is the original's, so ?deny_status does not apply
// there.
func originalRequest(in *Inbound) (original, *httpapi.Error) {
	var o original
	if in.EnvoyForm {
		path, ok := strings.CutPrefix(in.Path, "/v1/authorize/")
		if !ok {
			return o, httpapi.Errorf(httpapi.CodeInvalidPath, "the path must start with /v1/authorize/ as written, not percent-encoded")
		}
		o.method, o.path, o.rawQuery = in.Method, "/"+path, in.RawQuery
		return o, nil
	}
	method, e := agreeingHeader(in.Header.ForwardedMethod, in.Header.OriginalMethod, "X-Forwarded-Method", "X-Original-Method")
	if e != nil {
		return o, e
	}
	if method != "" && !metrics.ValidMethod(method) {
		// Recorded as given, it would reach exports and the dashboard.
		return o, httpapi.Errorf(httpapi.CodeInvalidRequest, "X-Forwarded-Method / X-Original-Method must be an HTTP method (an RFC 9110 token of at most %d characters)", metrics.MaxMethodBytes)
	}
	uri, e := agreeingHeader(in.Header.ForwardedURI, in.Header.OriginalURI, "X-Forwarded-Uri", "X-Original-Uri")
	if e != nil {
		return o, e
	}
	o.method = method
	if o.method == "" {
		o.method = in.Method
	}
	o.path, o.rawQuery, _ = strings.Cut(uri, "?")
	if in.RawQuery == "" {
		return o, nil
	}
	q, _ := url.ParseQuery(in.RawQuery) // as net/http's URL.Query: what parses counts
	if v := q.Get("deny_status"); v != "" {
		switch v {
		case "401", "403", "429":
			o.denyStatus, _ = strconv.Atoi(v)
		default:
			return o, httpapi.Errorf(httpapi.CodeInvalidParameter, "deny_status: must be 401, 403 or 429, got %q", v)
		}
	}
	return o, nil
}

// agreeingHeader returns whichever of two header values (named a and b)
// is set, and refuses the request when both are set and differ.
func agreeingHeader(va, vb, a, b string) (string, *httpapi.Error) {
	switch {
	case va == "":
		return vb, nil
	case vb == "" || va == vb:
		return va, nil
	}
	return "", httpapi.Errorf(httpapi.CodeInvalidRequest, "%s and %s disagree; the proxy must set one and remove the client's", a, b)
}

// authorizeRequest is Authorize up to a refusal that comes before any
// decision, which it returns.
func (s *Gateway) authorizeRequest(h http.Header, in *Inbound) (Answer, *httpapi.Error) {
	start := s.now()
	g := s.gate
	if e := g.serviceTokenError(in.Peer, in.Header.Token); e != nil {
		return Answer{}, e
	}
	if !g.headerSizeOK(in.HeaderBytes) {
		return Answer{}, httpapi.Errorf(httpapi.CodeHeadersTooLarge, "request headers are larger than %d bytes", g.MaxHeaderBytes)
	}
	o, e := originalRequest(in)
	if e != nil {
		return Answer{}, e
	}
	rateLimitedStatus := g.AuthorizeRateLimitedStatus
	if o.denyStatus != 0 {
		rateLimitedStatus = o.denyStatus
	}
	path, e := g.checkPath(o.path)
	if e != nil {
		if rateLimitedStatus == http.StatusTooManyRequests {
			return Answer{}, e
		}
		// A proxy that cannot pass a 429 on (nginx's auth_request passes
		// only 401 and 403) cannot pass a 400 either: a refused path takes
		// the status asked for, rather than become the proxy's 500.
		h["X-Apiwarden-Code"] = []string{e.Code}
		return s.errorAnswer(h, in, e, rateLimitedStatus), nil
	}
	key, _ := keyOf(in.Header.APIKey, in.Header.Authorization)
	f := newFacts(key, o.method, path, o.rawQuery, in.Header.Origin, g.Trusted.ClientIP(in.Peer, in.Header.ForwardedFor))
	d := g.decide(start, &f)

	hv := new(headerValues)
	g.setLimitValues(headerMap(h), hv, &d, start)
	hv.set(h, "X-Apiwarden-Code", d.Code.String())
	a := Answer{Status: http.StatusOK}
	if d.Allowed() {
		setIdentityHeaders(headerMap(h), hv, d.Identity, d.Tier)
		hv.set(h, "X-Request-Id", in.RequestID)
		hv.set(h, "Content-Length", "0")
	} else {
		a.Status = httpapi.DecisionStatus(d.Code)
		if d.Code.IsRateLimited() {
			a.Status = rateLimitedStatus
		}
		a = s.errorAnswer(h, in, httpapi.Denial(d.Code), a.Status)
	}
	s.recordDecision("authorize", in, start, &d, f.ClientIP, f.Method, f.Path, a.Status)
	return a, nil
}

// recordDecision records a request apiwarden decided but did not serve
// (forward auth, check): its status is the one apiwarden answered.
func (s *Gateway) recordDecision(entry string, in *Inbound, start time.Time, d *enforce.Decision, client netip.Addr, method, path string, status int) {
	g := s.gate
	latency := s.now().Sub(start)
	g.observe(entry, d, latency, 0)
	if !g.recorded(d) {
		return
	}
	rec := g.records.Get().(*metrics.Record)
	g.startRecord(rec, start, d, recordRequest{id: in.RequestID, method: in.Method, userAgent: in.Header.UserAgent,
		country: in.Header.Country, bytes: in.ContentLength}, client, path)
	rec.Method = method
	rec.Status = status
	rec.Latency = latency
	rec.ErrorCategory = metrics.CategorizeError(status, rec.Decision)
	g.Recorder.Record(rec)
	*rec = metrics.Record{} // no strings kept alive in the pool
	g.records.Put(rec)
}
