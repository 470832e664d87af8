package api

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

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
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	start := s.now()
	g := s.gate
	if e := g.checkServiceToken(r); e != nil {
		return e
	}
	if !g.headerBytesOK(r) {
		return errorf(CodeHeadersTooLarge, "request headers are larger than %d bytes", g.MaxHeaderBytes)
	}
	rateLimitedStatus := g.AuthorizeRateLimitedStatus
	if v := r.URL.Query().Get("deny_status"); v != "" {
		switch v {
		case "401", "403", "429":
			rateLimitedStatus = int(v[0]-'0')*100 + int(v[1]-'0')*10 + int(v[2]-'0')
		default:
			return errorf(CodeInvalidParameter, "deny_status: must be 401, 403 or 429, got %q", v)
		}
	}

	method := firstHeader(r.Header, "X-Forwarded-Method", "X-Original-Method")
	if method == "" {
		method = r.Method
	}
	uri := firstHeader(r.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if uri == "" {
		uri = ps.ByName("path") // Envoy: /v1/authorize/<original path>
	}
	path, rawQuery, _ := strings.Cut(uri, "?")
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	path = enforce.CleanPath(path)

	key, _ := presentedKey(r.Header)
	f := enforce.Facts{HeaderKey: key, Method: strings.ToUpper(method), Path: path, Origin: r.Header.Get("Origin")}
	f.ClientIP = g.Trusted.ClientIP(peerAddr(r), r.Header.Values("X-Forwarded-For"))
	if strings.Contains(rawQuery, "api_key=") {
		if q, err := url.ParseQuery(rawQuery); err == nil {
			f.QueryKey = q.Get("api_key")
		}
	}
	d := g.Engine.Decide(start, &f)

	h := w.Header()
	setLimitHeaders(h, &d, start)
	h["X-Apiwarden-Code"] = []string{d.Code.String()}
	status := http.StatusOK
	if d.Allowed() {
		setIdentityHeaders(h, &d)
		h["X-Request-Id"] = []string{RequestIDFrom(r.Context())}
		h["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusOK)
	} else {
		status = d.Code.Status()
		if d.Code == enforce.RateLimited || d.Code == enforce.QuotaExceeded {
			status = rateLimitedStatus
		}
		writeErrorStatus(w, r, s.log, denyError(&d), status)
	}
	s.recordDecision("authorize", r, start, &d, f.ClientIP, f.Method, path, status)
	return nil
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// recordDecision records a request apiwarden decided but did not serve
// (forward auth, check): its status is the one apiwarden answered.
func (s *Server) recordDecision(entry string, r *http.Request, start time.Time, d *enforce.Decision, client netip.Addr, method, path string, status int) {
	g := s.gate
	latency := s.now().Sub(start)
	g.observe(entry, d, latency, 0)
	if g.Recorder == nil {
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
