package gateway

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/metrics"
)

// checkRequest is the body of POST /v1/check.
type checkRequest struct {
	Key    string `json:"key"`
	Method string `json:"method"`
	Path   string `json:"path"`
	IP     string `json:"ip"`
	Origin string `json:"origin"`
	Cost   int    `json:"cost"`
}

// CheckRateLimit is the tightest bucket of a checked request.
type CheckRateLimit struct {
	Policy    string `json:"policy"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	Reset     int64  `json:"reset"` // Unix seconds when the bucket is full again
}

// CheckResponse is the answer of POST /v1/check (docs/API.md); it is 200
// whether the request is allowed or not.
type CheckResponse struct {
	Allowed    bool            `json:"allowed"`
	Code       string          `json:"code"`
	KeyID      string          `json:"key_id,omitempty"`
	OwnerID    string          `json:"owner_id,omitempty"`
	Tier       string          `json:"tier,omitempty"`
	Scopes     []string        `json:"scopes"`
	RateLimit  *CheckRateLimit `json:"ratelimit"`
	RetryAfter int64           `json:"retry_after"` // seconds; 0 when allowed
	Message    string          `json:"message,omitempty"`
}

// check is the check API on net/http: see Check.
func (s *Gateway) check(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	in := s.inboundFromHTTP(r, ps)
	in.Body = http.MaxBytesReader(w, r.Body, httpapi.MaxJSONBody)
	writeAnswer(w, s.Check(w.Header(), &in))
	return nil
}

// Check decides a request described in the body (a checkRequest), for
// apps that call apiwarden from their own middleware, and records it. The
// answer is 200 with a CheckResponse whether the request may pass or not;
// a bad body or a refused caller gets the error body. It sets the
// answer's headers in h and returns the rest. It is safe for concurrent
// use.
func (s *Gateway) Check(h http.Header, in *Inbound) Answer {
	a, e := s.checkRequest(h, in)
	if e != nil {
		return s.errorAnswer(h, in, e, httpapi.StatusOf(e.Code))
	}
	return a
}

// checkRequest is Check up to a refusal that comes before any decision,
// which it returns.
func (s *Gateway) checkRequest(h http.Header, in *Inbound) (Answer, *httpapi.Error) {
	start := s.now()
	g := s.gate
	if e := g.serviceTokenError(in.Peer, in.Header.Token); e != nil {
		return Answer{}, e
	}
	var req checkRequest
	if e := readCheck(in, &req); e != nil {
		return Answer{}, e
	}
	if req.Method == "" {
		req.Method = "GET"
	}
	if !metrics.ValidMethod(req.Method) {
		return Answer{}, httpapi.Errorf(httpapi.CodeInvalidRequest, "method: must be an HTTP method (an RFC 9110 token of at most %d characters)", metrics.MaxMethodBytes)
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if req.Cost < 0 || req.Cost > 1000 {
		return Answer{}, httpapi.Errorf(httpapi.CodeInvalidRequest, "cost: must be 0 to 1000 (0 = the route's cost), got %d", req.Cost)
	}
	client := in.Peer
	if req.IP != "" {
		a, err := netip.ParseAddr(req.IP)
		if err != nil {
			return Answer{}, httpapi.Errorf(httpapi.CodeInvalidRequest, "ip: %q is not an IP address", req.IP)
		}
		client = a.Unmap()
	}
	escaped, _, _ := strings.Cut(req.Path, "?")
	path, e := g.checkPath(escaped)
	if e != nil {
		return Answer{}, e
	}
	f := newFacts(req.Key, req.Method, path, "", req.Origin, client)
	f.Cost = req.Cost
	d := g.decide(start, &f)

	resp := CheckResponse{Allowed: d.Allowed(), Code: d.Code.String(), Tier: d.Tier, Scopes: []string{}}
	if id := d.Identity; id != nil {
		resp.KeyID, resp.OwnerID, resp.Scopes = id.ID, id.OwnerID, id.Scopes
	}
	if !d.Allowed() {
		resp.Message = d.Code.Message()
	}
	if t, ok := d.Limit.Tightest(); d.Limited && ok {
		resp.RateLimit = &CheckRateLimit{Policy: t.Policy, Limit: t.Limit, Remaining: t.Remaining, Reset: ceilUnix(start.Add(t.Reset))}
	}
	if d.Code.IsRateLimited() {
		resp.RetryAfter = retryAfterSeconds(&d)
	}
	g.setLimitHeaders(h, &d, start)
	out := resp.AppendJSON(make([]byte, 0, 320))
	httpapi.SetJSONHeaders(h, len(out))
	s.recordDecision("check", in, start, &d, client, f.Method, f.Path, httpapi.DecisionStatus(d.Code))
	return Answer{Status: http.StatusOK, Body: out}, nil
}

// readCheck reads the body of a check (in.Body, or in.BodyBytes when
// Body is nil) and decodes it into req as httpapi.DecodeJSONFrom would
// (see decodeCheckBody).
func readCheck(in *Inbound, req *checkRequest) *httpapi.Error {
	if err := httpapi.JSONContentType(in.Header.ContentType); err != nil {
		return httpapi.AsError(err)
	}
	data := in.BodyBytes
	if in.Body != nil {
		var err error
		if data, err = httpapi.ReadJSONBody(in.Body, ""); err != nil {
			return httpapi.AsError(err)
		}
	}
	return decodeCheckBody(data, req)
}
