package gateway

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
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

// check decides a request described in the body, for apps that call
// apiwarden from their own middleware.
func (s *Gateway) check(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	start := s.now()
	g := s.gate
	if e := g.checkServiceToken(r); e != nil {
		return e
	}
	var req checkRequest
	if err := httpapi.DecodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if req.Cost < 0 || req.Cost > 1000 {
		return httpapi.Errorf(httpapi.CodeInvalidRequest, "cost: must be 0 to 1000 (0 = the route's cost), got %d", req.Cost)
	}
	client := httpapi.PeerAddr(r)
	if req.IP != "" {
		a, err := netip.ParseAddr(req.IP)
		if err != nil {
			return httpapi.Errorf(httpapi.CodeInvalidRequest, "ip: %q is not an IP address", req.IP)
		}
		client = a.Unmap()
	}
	escaped, _, _ := strings.Cut(req.Path, "?")
	path, e := g.checkPath(escaped)
	if e != nil {
		return e
	}
	f := newFacts(req.Key, req.Method, path, "", req.Origin, client)
	f.Cost = req.Cost
	d := g.Engine.Decide(start, &f)

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
	setLimitHeaders(w.Header(), &d, start)
	httpapi.WriteJSON(w, http.StatusOK, resp)
	s.recordDecision("check", r, start, &d, client, f.Method, f.Path, httpapi.DecisionStatus(d.Code))
	return nil
}
