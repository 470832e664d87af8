// Package api is apiwarden's HTTP edge: the admin API, the enforcement
// entry points (proxy, forward auth, check), event ingest, analytics and
// the live stream. The core packages it wires together know nothing of
// HTTP; handlers here translate requests into their calls and their
// errors into SPEC's error body, in one place (errors.go).
package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/keys"
)

// KeyAdmin is what the admin API needs of the key service.
type KeyAdmin interface {
	Create(p keys.CreateParams, actor string) (keys.Key, string, error)
	Get(id string) (keys.Key, error)
	List(f keys.Filter) ([]keys.Key, string, error)
	Update(id string, p keys.Patch, actor string) (keys.Key, error)
	Rotate(id string, grace *time.Duration, actor string) (keys.Key, string, error)
	Revoke(id, actor, reason string) (keys.Key, error)
	Events(id, cursor string, limit int) ([]keys.Event, string, error)
}

var _ KeyAdmin = (*keys.Service)(nil)

// Options configure a Server.
type Options struct {
	// AdminToken guards /admin; empty refuses every admin call.
	AdminToken string
	Keys       KeyAdmin
	Gate       GateOptions
	// Events takes POST /v1/events records; nil answers 503.
	Events EventSink
	// DebugPprof adds /debug/pprof/ to the admin listener.
	DebugPprof bool
	// Alerts serves the /admin/v1/alerts routes; nil answers 503.
	Alerts AlertAdmin
	// Backup serves GET /admin/v1/backup; nil answers 503.
	Backup Backupper
	// Analytics wires the analytics, requests, stream and key usage
	// routes; see AnalyticsOptions.
	Analytics AnalyticsOptions
	// Metrics serves GET /metrics (Prometheus text format); nil: no route.
	Metrics http.Handler
	// MetricsToken, when set, is required as a bearer token on /metrics.
	MetricsToken string
	// ReadyChecks are shown by /readyz; they report degradation (such as
	// Redis fallback) without making the instance unready.
	ReadyChecks []ReadyCheck
	// Proxy, when its Upstream is set, turns on proxy mode: the
	// enforcement listener forwards every path upstream and /v1/* moves to
	// the admin listener.
	Proxy ProxyOptions
	// SharedListener says listen and admin_listen are the same address
	// (allowed without an upstream): one handler serves both route sets.
	SharedListener bool
	Version        string
	Now            func() time.Time
	Logger         *slog.Logger

	// Dashboard configures the /ui/ dashboard's login sessions
	// (dashboard.session_ttl).
	Dashboard DashboardOptions
	// AuthFailureLimit wrong admin tokens from one client address within
	// AuthFailureWindow lock the address out until the window ends;
	// 0 means DefaultAuthFailureLimit, negative turns the throttle off.
	AuthFailureLimit  int
	AuthFailureWindow time.Duration
}

// Server holds the handlers. Build it with New; serve AdminHandler on
// admin_listen.
type Server struct {
	keys      KeyAdmin
	version   string
	now       func() time.Time
	log       *slog.Logger
	ids       *requestIDs
	ready     atomic.Bool
	gate      *gate
	events    EventSink
	backupper Backupper
	alerts    AlertAdmin
	analytics *analyticsAPI
	checks    []ReadyCheck
	proxy     *proxy // nil without an upstream
	shared    bool

	sessions *sessions     // the dashboard's logins
	throttle *authThrottle // wrong admin tokens per client address

	adminTokenSet  bool
	adminTokenHash [32]byte

	routes []Route
}

// access says who may call a route.
type access int

const (
	accessOpen    access = iota // health checks
	accessAdmin                 // admin token (or dashboard session)
	accessService               // /v1: the service token when one is set (checked by the handler)
	// accessAdminShadowed is an admin route that the router cannot hold
	// beside a :param route at the same place; that route serves it.
	accessAdminShadowed
)

// Route is one entry of the admin router; the table is also what tests
// and the OpenAPI document enumerate, so no route can escape them.
type Route struct {
	Method  string
	Path    string
	Summary string
	access  access
	handle  handlerFunc
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error

// New builds a server.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		keys:    opts.Keys,
		version: opts.Version,
		now:     opts.Now,
		log:     opts.Logger,
		ids:     newRequestIDs(),
	}
	if opts.AdminToken != "" {
		s.adminTokenSet = true
		s.adminTokenHash = sha256.Sum256([]byte(opts.AdminToken))
	}
	s.gate = newGate(opts.Gate)
	s.events = opts.Events
	s.backupper = opts.Backup
	s.alerts = opts.Alerts
	s.analytics = newAnalyticsAPI(opts.Analytics, opts.Now, opts.Logger)
	s.checks = opts.ReadyChecks
	if opts.Proxy.Upstream != nil {
		s.proxy = newProxy(s, s.gate, opts.Proxy)
	}
	s.shared = opts.SharedListener && s.proxy == nil
	s.sessions = newSessions(opts.Dashboard, opts.Now)
	s.throttle = newAuthThrottle(opts.AuthFailureLimit, opts.AuthFailureWindow, opts.Now)
	s.routes = append(s.adminRoutes(), s.dashboardRoutes()...)
	if opts.Metrics != nil {
		h, want := opts.Metrics, sha256.Sum256([]byte(opts.MetricsToken))
		s.routes = append(s.routes, Route{"GET", "/metrics", "Prometheus metrics", accessOpen,
			func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
				if opts.MetricsToken != "" {
					token, _ := bearer(r.Header.Get("Authorization"))
					got := sha256.Sum256([]byte(token))
					if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
						return errorf(CodeUnauthorized, "send the metrics token as Authorization: Bearer <token>")
					}
				}
				h.ServeHTTP(w, r)
				return nil
			}})
	}
	if opts.DebugPprof {
		s.routes = append(s.routes, pprofRoutes()...)
	}
	if s.proxy != nil || s.shared {
		s.routes = append(s.routes, s.serviceRoutes()...)
	}
	return s
}

// serviceRoutes are the /v1 routes apps and proxies call.
func (s *Server) serviceRoutes() []Route {
	var rs []Route
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		rs = append(rs,
			Route{m, "/v1/authorize", "forward auth (nginx, Traefik, Caddy)", accessService, s.authorize},
			Route{m, "/v1/authorize/*path", "forward auth (Envoy ext_authz appends the path)", accessService, s.authorize})
	}
	return append(rs,
		Route{"POST", "/v1/check", "decide a described request", accessService, s.check},
		Route{"POST", "/v1/events", "ingest request records (JSON array or NDJSON)", accessService, s.ingestEvents})
}

// SetReady flips /readyz: false while starting and while draining.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Routes lists the admin listener's routes.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

func (s *Server) adminRoutes() []Route {
	return append([]Route{
		{"GET", "/healthz", "liveness", accessOpen, s.healthz},
		{"GET", "/readyz", "readiness", accessOpen, s.readyz},

		{"POST", "/admin/v1/keys", "create a key", accessAdmin, s.createKey},
		{"GET", "/admin/v1/keys", "list keys", accessAdmin, s.listKeys},
		{"GET", "/admin/v1/keys/:id", "show a key", accessAdmin, s.getKey},
		{"PATCH", "/admin/v1/keys/:id", "change a key", accessAdmin, s.patchKey},
		{"DELETE", "/admin/v1/keys/:id", "revoke a key", accessAdmin, s.revokeKey},
		{"POST", "/admin/v1/keys/:id/rotate", "rotate a key's secret", accessAdmin, s.rotateKey},
		{"GET", "/admin/v1/keys/:id/events", "a key's audit events", accessAdmin, s.keyEvents},
		{"GET", "/admin/v1/backup", "a consistent snapshot of the data file", accessAdmin, s.backup},
		{"GET", "/admin/v1/openapi.json", "this API's OpenAPI 3.1 description", accessAdmin, s.openAPI},
	}, append(s.alertRoutes(), s.analyticsRoutes()...)...)
}

// AdminHandler serves the admin listener.
func (s *Server) AdminHandler() http.Handler {
	return s.withRequestID(s.router(s.routes))
}

// EnforcementHandler serves the enforcement listener: the proxy in proxy
// mode, else the /v1 routes.
func (s *Server) EnforcementHandler() http.Handler {
	if s.proxy != nil {
		return s.withRequestID(s.proxy)
	}
	return s.withRequestID(s.router(s.serviceRoutes()))
}

func (s *Server) router(routes []Route) http.Handler {
	router := httprouter.New()
	router.RedirectTrailingSlash = false
	router.RedirectFixedPath = false
	for _, rt := range routes {
		if rt.access == accessAdminShadowed {
			continue
		}
		router.Handle(rt.Method, rt.Path, s.wrap(rt))
	}
	router.NotFound = s.plain(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(CodeRouteNotFound, "no route %s %s", r.Method, r.URL.Path)
	})
	router.MethodNotAllowed = s.plain(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, w.Header().Get("Allow"))
	})
	router.PanicHandler = func(w http.ResponseWriter, r *http.Request, v any) {
		writeError(w, r, s.log, &Error{Code: CodeInternal, Message: "internal error; the server log has details under this request id",
			Err: panicError{v}})
	}
	return router
}

type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprint("panic: ", p.v) }

// wrap applies a route's access rule and turns its error into a response.
func (s *Server) wrap(rt Route) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if rt.access == accessAdmin || rt.access == accessAdminShadowed {
			if e := s.authorizeAdmin(r); e != nil {
				writeError(w, r, s.log, e)
				return
			}
		}
		if err := rt.handle(w, r, ps); err != nil {
			writeError(w, r, s.log, asError(err))
		}
	}
}

func (s *Server) plain(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, asError(err))
		}
	})
}

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.ids.fromRequest(r)
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

// authorizeAdmin checks the bearer token in constant time. Both sides are
// hashed first so the comparison does not leak the token's length either.
// Without a bearer token, the dashboard's session cookie (and, on a
// change, its CSRF header) will do: see session.go.
func (s *Server) authorizeAdmin(r *http.Request) *Error {
	if !s.adminTokenSet {
		return errorf(CodeAdminDisabled, "the admin API is disabled: no admin token is configured (set APIWARDEN_ADMIN_TOKEN or security.admin_token and restart)")
	}
	if usesSession(r) {
		return s.authorizeSession(r)
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return errorf(CodeUnauthorized, "send the admin token as Authorization: Bearer <token>")
	}
	return s.checkAdminToken(r, token)
}

// checkAdminToken compares a presented admin token in constant time (both
// sides hashed, so not even its length leaks) and throttles addresses
// that keep presenting wrong ones.
func (s *Server) checkAdminToken(r *http.Request, token string) *Error {
	ip := s.gate.Trusted.ClientIP(peerAddr(r), r.Header.Values("X-Forwarded-For"))
	if wait, blocked := s.throttle.blocked(ip); blocked {
		return &Error{Code: CodeTooManyAttempts, Message: fmt.Sprintf("too many wrong admin tokens from this address; try again in %d seconds",
			int(wait.Seconds())+1)}
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], s.adminTokenHash[:]) != 1 {
		s.throttle.failed(ip)
		return errorf(CodeUnauthorized, "the admin token is not valid")
	}
	s.throttle.succeeded(ip)
	return nil
}

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(h string) (string, bool) {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	t := strings.TrimSpace(h[len(p):])
	return t, t != ""
}

// actor names who made an admin change, for audit events. Scripts may add
// X-Apiwarden-Actor ("deploy-bot") to say more than "admin". Changes
// made through the dashboard's session are "dashboard".
func actor(r *http.Request) string {
	if usesSession(r) {
		return DashboardActor
	}
	a := r.Header.Get("X-Apiwarden-Actor")
	if a == "" || len(a) > 64 || !isToken(a) {
		return "admin"
	}
	return "admin:" + a
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
	return nil
}

// ReadyCheck is one named condition /readyz reports: "ok", or words
// describing a degradation.
type ReadyCheck struct {
	Name  string
	Check func() string
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if !s.ready.Load() {
		return errorf(CodeUnavailable, "not ready: starting or draining")
	}
	checks := map[string]string{}
	status := "ready"
	for _, c := range s.checks {
		if checks[c.Name] = c.Check(); checks[c.Name] != "ok" {
			status = "degraded"
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": status, "checks": checks})
	return nil
}
