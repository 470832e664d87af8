package gateway

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/metrics"
)

// authorize is the forward-auth endpoint for nginx auth_request, Traefik
// ForwardAuth, Caddy forward_auth and Envoy ext_authz (HTTP service). It
// answers 200 with the identity headers, or the denial's status and body.
//
// The original request is read from the headers each proxy sends:
// X-Forwarded-Method / X-Original-Method for the method and
// X-Forwarded-Uri / X-Original-URI for the URI; Envoy instead calls with
// the original method and appends the original path to the endpoint's
// (/v1/authorize/api/forms/1). The client is the right-most untrusted
// X-Forwarded-For hop, so the proxy must be in server.trusted_proxies.
func (s *Gateway) authorize(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	err := s.authorizeRequest(w, r, ps)
	if err != nil {
		// Every answer says its code in a header: nginx passes headers of
		// the auth response on, but not its body.
		w.Header()["X-Apiwarden-Code"] = []string{httpapi.AsError(err).Code}
	}
	return err
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
func originalRequest(r *http.Request, ps httprouter.Params) (original, *httpapi.Error) {
	var o original
	if suffix := ps.ByName("path"); suffix != "" && suffix != "/" {
		path, ok := strings.CutPrefix(escapedPath(r), "/v1/authorize/")
		if !ok {
			return o, httpapi.Errorf(httpapi.CodeInvalidPath, "the path must start with /v1/authorize/ as written, not percent-encoded")
		}
		o.method, o.path, o.rawQuery = r.Method, "/"+path, r.URL.RawQuery
		return o, nil
	}
	method, e := agreeingHeader(r.Header, "X-Forwarded-Method", "X-Original-Method")
	if e != nil {
		return o, e
	}
	uri, e := agreeingHeader(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if e != nil {
		return o, e
	}
	o.method = method
	if o.method == "" {
		o.method = r.Method
	}
	o.path, o.rawQuery, _ = strings.Cut(uri, "?")
	if v := r.URL.Query().Get("deny_status"); v != "" {
		switch v {
		case "401", "403", "429":
			o.denyStatus, _ = strconv.Atoi(v)
		default:
			return o, httpapi.Errorf(httpapi.CodeInvalidParameter, "deny_status: must be 401, 403 or 429, got %q", v)
		}
	}
	return o, nil
}

// agreeingHeader returns the value of whichever of two header names is
// set, and refuses the request when both are set and differ.
func agreeingHeader(h http.Header, a, b string) (string, *httpapi.Error) {
	va, vb := h.Get(a), h.Get(b)
	switch {
	case va == "":
		return vb, nil
	case vb == "" || va == vb:
		return va, nil
	}
	return "", httpapi.Errorf(httpapi.CodeInvalidRequest, "%s and %s disagree; the proxy must set one and remove the client's", a, b)
}

func (s *Gateway) authorizeRequest(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	start := s.now()
	g := s.gate
	if e := g.checkServiceToken(r); e != nil {
		return e
	}
	if !g.headerBytesOK(r) {
		return httpapi.Errorf(httpapi.CodeHeadersTooLarge, "request headers are larger than %d bytes", g.MaxHeaderBytes)
	}
	o, e := originalRequest(r, ps)
	if e != nil {
		return e
	}
	rateLimitedStatus := g.AuthorizeRateLimitedStatus
	if o.denyStatus != 0 {
		rateLimitedStatus = o.denyStatus
	}
	path, e := g.checkPath(o.path)
	if e != nil {
		if rateLimitedStatus == http.StatusTooManyRequests {
			return e
		}
		// A proxy that cannot pass a 429 on (nginx's auth_request passes
		// only 401 and 403) cannot pass a 400 either: a refused path takes
		// the status asked for, rather than become the proxy's 500.
		w.Header()["X-Apiwarden-Code"] = []string{e.Code}
		httpapi.WriteErrorStatus(w, r, s.log, e, rateLimitedStatus)
		return nil
	}
	key, _ := presentedKey(r.Header)
	f := newFacts(key, o.method, path, o.rawQuery, r.Header.Get("Origin"),
		g.Trusted.ClientIP(httpapi.PeerAddr(r), r.Header.Values("X-Forwarded-For")))
	d := g.Engine.Decide(start, &f)

	h := w.Header()
	setLimitHeaders(h, &d, start)
	h["X-Apiwarden-Code"] = []string{d.Code.String()}
	status := http.StatusOK
	if d.Allowed() {
		setIdentityHeaders(h, &d)
		h["X-Request-Id"] = []string{httpapi.RequestIDFrom(r.Context())}
		h["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusOK)
	} else {
		status = httpapi.DecisionStatus(d.Code)
		if d.Code.IsRateLimited() {
			status = rateLimitedStatus
		}
		httpapi.WriteErrorStatus(w, r, s.log, httpapi.Denial(d.Code), status)
	}
	s.recordDecision("authorize", r, start, &d, f.ClientIP, f.Method, f.Path, status)
	return nil
}

// recordDecision records a request apiwarden decided but did not serve
// (forward auth, check): its status is the one apiwarden answered.
func (s *Gateway) recordDecision(entry string, r *http.Request, start time.Time, d *enforce.Decision, client netip.Addr, method, path string, status int) {
	g := s.gate
	latency := s.now().Sub(start)
	g.observe(entry, d, latency, 0)
	if !g.recorded(d) {
		return
	}
	var rec metrics.Record
	g.newRecord(&rec, r, start, d, client, path)
	rec.Method = method
	rec.Status = status
	rec.Latency = latency
	rec.ErrorCategory = metrics.CategorizeError(status, rec.Decision)
	g.Recorder.Record(&rec)
}
