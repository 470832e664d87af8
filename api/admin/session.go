package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/ui"
)

// The dashboard logs in by trading the admin token for a session: an
// HttpOnly, SameSite=Strict cookie that the browser sends by itself, and a
// CSRF token that the page keeps in memory and sends as X-CSRF-Token with
// every POST, PATCH and DELETE. A single instance keeps sessions in
// memory (a restart logs everyone out, which is the safe way round); in
// cluster mode they live in a SessionStore every instance reads, so a
// login works on any instance behind a load balancer and a logout ends it
// on all of them.

// SessionCookie is the name of the dashboard's session cookie over plain
// HTTP; over HTTPS it is SecureSessionCookie (see httpapi.SessionCookie).
const SessionCookie = httpapi.SessionCookie

// SecureSessionCookie is the name of the dashboard's session cookie over
// HTTPS: a __Host- cookie, which only this host can set.
const SecureSessionCookie = httpapi.SecureSessionCookie

// CSRFHeader carries the session's CSRF token on state-changing calls.
const CSRFHeader = "X-CSRF-Token"

// DashboardActor is the audit actor of changes made through the dashboard.
const DashboardActor = "dashboard"

// DashboardOptions configure the dashboard's sessions.
type DashboardOptions struct {
	// SessionTTL is how long a login lasts, from the moment it is made
	// (config dashboard.session_ttl). Zero means DefaultSessionTTL.
	SessionTTL time.Duration
	// MaxSessions bounds the memory sessions take; a login beyond it ends
	// the session closest to expiry. Zero means 1000. A Store keeps its
	// own bound.
	MaxSessions int
	// Store, when set, keeps the sessions instead of this instance's
	// memory (cluster mode: *cluster.Cluster).
	Store SessionStore
}

// SessionStore keeps dashboard sessions where every instance reads them.
// It sees only SHA-256 hashes of session ids, never a cookie value. Its
// errors are answered as the error translation in api/httpapi says (503
// while the cluster's PostgreSQL is unreachable).
type SessionStore interface {
	// SaveSession records a session until expires.
	SaveSession(ctx context.Context, idHash [32]byte, csrf string, expires time.Time) error
	// LoadSession returns a session's CSRF token and expiry; ok is false
	// when there is none (never made, ended, or dropped after expiry).
	LoadSession(ctx context.Context, idHash [32]byte) (csrf string, expires time.Time, ok bool, err error)
	// EndSession removes a session; ending an unknown one is not an error.
	EndSession(ctx context.Context, idHash [32]byte) error
}

// DefaultSessionTTL is dashboard.session_ttl's default.
const DefaultSessionTTL = 12 * time.Hour

// session is one login. Only a hash of its id is kept, so the table
// itself holds nothing a reader of memory could replay as a cookie.
type session struct {
	csrf    string
	expires time.Time
}

// sessions is the session table: in memory, or in a SessionStore.
type sessions struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	store SessionStore // nil: byID holds them

	mu   sync.Mutex
	byID map[[32]byte]session
}

func newSessions(opts DashboardOptions, now func() time.Time) *sessions {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 1000
	}
	return &sessions{ttl: opts.SessionTTL, max: opts.MaxSessions, now: now, store: opts.Store, byID: map[[32]byte]session{}}
}

// randomToken is 256 bits from crypto/rand, base64url without padding.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go 1.24+ crashes instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session and returns its id (the cookie value).
func (t *sessions) create(ctx context.Context) (id string, s session, err error) {
	now := t.now()
	id = randomToken()
	s = session{csrf: randomToken(), expires: now.Add(t.ttl)}
	if t.store != nil {
		return id, s, t.store.SaveSession(ctx, sha256.Sum256([]byte(id)), s.csrf, s.expires)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked(now)
	for len(t.byID) >= t.max {
		t.evictOneLocked()
	}
	t.byID[sha256.Sum256([]byte(id))] = s
	return id, s, nil
}

// get returns the live session with this id. The id is looked up by its
// SHA-256, so timing tells nothing about how much of a guess matched.
func (t *sessions) get(ctx context.Context, id string) (session, bool, error) {
	h := sha256.Sum256([]byte(id))
	now := t.now()
	if t.store != nil {
		csrf, expires, ok, err := t.store.LoadSession(ctx, h)
		if err != nil || !ok || !now.Before(expires) {
			return session{}, false, err
		}
		return session{csrf: csrf, expires: expires}, true, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[h]
	if !ok {
		return session{}, false, nil
	}
	if !now.Before(s.expires) {
		delete(t.byID, h)
		return session{}, false, nil
	}
	return s, true, nil
}

// end removes a session; ending an unknown one is not an error.
func (t *sessions) end(ctx context.Context, id string) error {
	h := sha256.Sum256([]byte(id))
	if t.store != nil {
		return t.store.EndSession(ctx, h)
	}
	t.mu.Lock()
	delete(t.byID, h)
	t.mu.Unlock()
	return nil
}

// pruneLocked drops expired sessions. Caller holds t.mu.
func (t *sessions) pruneLocked(now time.Time) {
	for h, s := range t.byID {
		if !now.Before(s.expires) {
			delete(t.byID, h)
		}
	}
}

// evictOneLocked drops the session that would expire first. Caller holds t.mu.
func (t *sessions) evictOneLocked() {
	var oldest [32]byte
	var first time.Time
	for h, s := range t.byID {
		if first.IsZero() || s.expires.Before(first) {
			oldest, first = h, s.expires
		}
	}
	delete(t.byID, oldest)
}

// sessionCookieName is the session cookie's name for the way the browser
// reached us: the __Host- name over HTTPS only. A __Host- cookie must be
// Secure, and browsers refuse a Secure cookie from a plain-HTTP page
// (Chromium excepts loopback addresses), so a dashboard opened as
// http://10.0.0.5:8081 could not log in with it.
func sessionCookieName(r *http.Request) string {
	if overTLS(r) {
		return SecureSessionCookie
	}
	return SessionCookie
}

// sessionCookie returns the request's session cookie value, if any. Over
// HTTPS only the __Host- cookie counts, so one that another host set in
// its place under the plain name is never read.
func sessionCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookieName(r))
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// usesSession says whether a request authenticates with the dashboard's
// cookie: it has one and no bearer token, which wins when both are sent.
// authorizeAdmin and actor decide in this same order.
func usesSession(r *http.Request) bool {
	if _, ok := httpapi.Bearer(r.Header.Get("Authorization")); ok {
		return false
	}
	_, ok := sessionCookie(r)
	return ok
}

// authorizeSession checks a request that uses the session cookie: the
// session must be live, and a method that changes something must carry
// the session's CSRF token. SameSite=Strict already keeps the cookie off
// cross-site requests; the token is the second lock, for browsers or
// proxies that get SameSite wrong.
func (s *Server) authorizeSession(r *http.Request) *httpapi.Error {
	id, _ := sessionCookie(r)
	sess, ok, err := s.sessions.get(r.Context(), id)
	if err != nil {
		return httpapi.AsError(err)
	}
	if !ok {
		return httpapi.Errorf(httpapi.CodeUnauthorized, "the dashboard session has expired or was ended; log in again")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		return httpapi.Errorf(httpapi.CodeForbidden, "missing %s header: a change made with the dashboard's session must carry the CSRF token it received at login", CSRFHeader)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
		return httpapi.Errorf(httpapi.CodeForbidden, "the %s header does not match this session; reload the dashboard", CSRFHeader)
	}
	return nil
}

// sessionAnswer is the JSON of the session routes.
type sessionAnswer struct {
	// Actor is who changes are recorded as: "dashboard" with a session,
	// "admin" with the bearer token.
	Actor     string     `json:"actor"`
	CSRFToken string     `json:"csrf_token,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (s *Server) sessionRoutes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "POST", Path: "/admin/v1/session", Summary: "log in to the dashboard: trade the admin token for a session cookie", Access: httpapi.AccessOpen, Handle: s.login},
		{Method: "GET", Path: "/admin/v1/session", Summary: "the current session and its CSRF token", Access: httpapi.AccessAdmin, Handle: s.currentSession},
		{Method: "POST", Path: "/admin/v1/session/logout", Summary: "end the dashboard session", Access: httpapi.AccessAdmin, Handle: s.logout},
	}
}

// login checks the admin token, given as {"token":"…"} or as a bearer
// header, and answers 201 with the session cookie and the CSRF token.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ui.SetSecurityHeaders(w.Header())
	if !s.adminTokenSet {
		return httpapi.Errorf(httpapi.CodeAdminDisabled, "the admin API is disabled: no admin token is configured (set APIWARDEN_ADMIN_TOKEN or security.admin_token and restart)")
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, true); err != nil {
		return err
	}
	token := strings.TrimSpace(body.Token)
	if token == "" {
		token, _ = httpapi.Bearer(r.Header.Get("Authorization"))
	}
	if token == "" {
		return httpapi.Errorf(httpapi.CodeUnauthorized, `send the admin token as {"token":"…"}`)
	}
	if e := s.checkAdminToken(r, token); e != nil {
		return e
	}
	id, sess, err := s.sessions.create(r.Context())
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookieName(r),
		Value:    id,
		Path:     "/",
		Expires:  sess.expires,
		MaxAge:   int(s.sessions.ttl / time.Second),
		HttpOnly: true,
		Secure:   overTLS(r),
		SameSite: http.SameSiteStrictMode,
	})
	exp := sess.expires.UTC()
	httpapi.WriteJSON(w, http.StatusCreated, sessionAnswer{Actor: DashboardActor, CSRFToken: sess.csrf, ExpiresAt: &exp})
	return nil
}

// currentSession lets a reloaded page recover its CSRF token: the cookie
// survived, the page's memory did not. Another site cannot read this
// answer (no CORS) nor make the browser send the cookie (SameSite).
func (s *Server) currentSession(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ui.SetSecurityHeaders(w.Header())
	if !usesSession(r) {
		httpapi.WriteJSON(w, http.StatusOK, sessionAnswer{Actor: "admin"})
		return nil
	}
	id, _ := sessionCookie(r)
	sess, ok, err := s.sessions.get(r.Context(), id)
	if err != nil {
		return err
	}
	if !ok {
		return httpapi.Errorf(httpapi.CodeUnauthorized, "the dashboard session has expired or was ended; log in again")
	}
	exp := sess.expires.UTC()
	httpapi.WriteJSON(w, http.StatusOK, sessionAnswer{Actor: DashboardActor, CSRFToken: sess.csrf, ExpiresAt: &exp})
	return nil
}

// logout ends the session and clears the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	ui.SetSecurityHeaders(w.Header())
	if id, ok := sessionCookie(r); ok {
		if err := s.sessions.end(r.Context(), id); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookieName(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: overTLS(r), SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// overTLS says whether the browser reached us over HTTPS, directly or
// through a proxy that says so. Believing the header costs nothing: a
// liar only makes its own cookie stricter.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
