package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/keys"
)

// keyWithSecret is the answer to create and rotate: the only time the
// secret is ever shown.
type keyWithSecret struct {
	Key    keys.Key `json:"key"`
	Secret string   `json:"secret"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var p keys.CreateParams
	if err := httpapi.DecodeJSON(w, r, &p, false); err != nil {
		return err
	}
	k, secret, err := s.keys.Create(p, actor(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/keys/"+k.ID)
	httpapi.WriteJSON(w, http.StatusCreated, keyWithSecret{Key: k, Secret: secret})
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	if err := onlyParams(q, "owner_id", "tier", "status", "cursor", "limit"); err != nil {
		return err
	}
	f := keys.Filter{OwnerID: q.Get("owner_id"), Tier: q.Get("tier"), Cursor: q.Get("cursor")}
	switch st := keys.Status(q.Get("status")); st {
	case "", keys.StatusActive, keys.StatusRevoked, keys.StatusExpired:
		f.Status = st
	default:
		return httpapi.Errorf(httpapi.CodeInvalidParameter, "status: must be active, revoked or expired, got %q", st)
	}
	limit, err := intParam(q.Get("limit"), "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	f.Limit = limit
	list, next, err := s.keys.List(f)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"keys": list, "next_cursor": next})
	return nil
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	k, err := s.keys.Get(ps.ByName("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) patchKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var p keys.Patch
	if err := httpapi.DecodeJSON(w, r, &p, false); err != nil {
		return err
	}
	k, err := s.keys.Update(ps.ByName("id"), p, actor(r))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, true); err != nil {
		return err
	}
	if body.Reason == "" {
		body.Reason = r.URL.Query().Get("reason")
	}
	k, err := s.keys.Revoke(ps.ByName("id"), actor(r), body.Reason)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	var body struct {
		// GracePeriod is how long the old secret keeps working: "1h",
		// "0s"; absent means the configured default.
		GracePeriod *string `json:"grace_period"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, true); err != nil {
		return err
	}
	var grace *time.Duration
	if body.GracePeriod != nil {
		d, err := time.ParseDuration(*body.GracePeriod)
		if err != nil || d < 0 {
			return httpapi.Errorf(httpapi.CodeInvalidRequest, "grace_period: must be a duration such as \"24h\" or \"0s\", got %q", *body.GracePeriod)
		}
		grace = &d
	}
	k, secret, err := s.keys.Rotate(ps.ByName("id"), grace, actor(r))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, keyWithSecret{Key: k, Secret: secret})
	return nil
}

func (s *Server) keyEvents(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	q := r.URL.Query()
	if err := onlyParams(q, "cursor", "limit"); err != nil {
		return err
	}
	limit, err := intParam(q.Get("limit"), "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	events, next, err := s.keys.Events(ps.ByName("id"), q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"events": events, "next_cursor": next})
	return nil
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, httpapi.Errorf(httpapi.CodeInvalidParameter, "%s: must be a whole number from %d to %d, got %q", name, lo, hi, v)
	}
	return n, nil
}

// onlyParams refuses query parameters a route does not know, so a typo
// ("onwer_id") is an error instead of a silently unfiltered answer.
func onlyParams(q map[string][]string, known ...string) error {
	for name := range q {
		found := false
		for _, k := range known {
			if name == k {
				found = true
				break
			}
		}
		if !found {
			return httpapi.Errorf(httpapi.CodeInvalidParameter, "%s: unknown parameter (this route takes: %v)", name, known)
		}
	}
	return nil
}
