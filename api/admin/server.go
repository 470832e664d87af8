// Package admin is apiwarden's admin edge: the admin API (keys, alerts,
// analytics, exports, the live stream, backups), the dashboard and its
// sessions, health checks, /metrics and the OpenAPI document, all on the
// admin listener. The core packages it wires together know nothing of
// HTTP; handlers return errors, and api/httpapi turns them into the error
// body and status in one place.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/enforce"
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
	RecordErasure(id, actor, detail string, blank bool) (keys.Key, error)
}

var _ KeyAdmin = (*keys.Service)(nil)

// Options configure a Server.
type Options struct {
	// AdminToken guards /admin; empty refuses every admin call.
	AdminToken string
	Keys       KeyAdmin
	// Trusted says whose X-Forwarded-For names the client, for the
	// wrong-token throttle.
	Trusted enforce.TrustedProxies
	// DebugPprof adds /debug/pprof/ to the admin listener.
	DebugPprof bool
	// Alerts serves the /admin/v1/alerts routes; nil answers 503.
	Alerts AlertAdmin
	// Backup serves GET /admin/v1/backup; nil answers 503.
	Backup Backupper
	// Eraser serves the DELETE …/data routes; nil answers 503.
	Eraser UsageEraser
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
	// Cluster lists the cluster's instances for GET /admin/v1/cluster;
	// nil means a single instance.
	Cluster ClusterView
	// Service are routes of the request edge that this listener serves
	// too: the /v1 routes in proxy mode, or when listen and admin_listen
	// are one address (gateway.Gateway.Routes).
	Service []httpapi.Route
	// RequestIDs names requests; nil draws a generator of its own.
	RequestIDs *httpapi.RequestIDs
	Version    string
	Now        func() time.Time
	Logger     *slog.Logger

	// Dashboard configures the /ui/ dashboard's login sessions
	// (dashboard.session_ttl).
	Dashboard DashboardOptions
	// Past AuthFailureLimit wrong admin tokens from one client within
	// AuthFailureWindow, further wrong ones are answered 429 until the
	// window ends; the right token always passes. 0 means
	// DefaultAuthFailureLimit, negative turns the throttle off.
	AuthFailureLimit  int
	AuthFailureWindow time.Duration
	// IPv6Prefix groups IPv6 clients by network for that count (see
	// enforce.ClientNetwork); 0 means enforce.DefaultIPv6Prefix.
	IPv6Prefix int
}

// Server holds the handlers. Build it with New; serve AdminHandler on
// admin_listen.
type Server struct {
	keys      KeyAdmin
	version   string
	now       func() time.Time
	log       *slog.Logger
	ids       *httpapi.RequestIDs
	trusted   enforce.TrustedProxies
	ready     atomic.Bool
	backupper Backupper
	eraser    UsageEraser
	alerts    AlertAdmin
	analytics *analyticsAPI
	checks    []ReadyCheck
	cluster   ClusterView // nil: a single instance

	sessions   *sessions     // the dashboard's logins
	throttle   *authThrottle // wrong admin tokens per client network
	ipv6Prefix int           // bits of an IPv6 address that name one client

	adminTokenSet  bool
	adminTokenHash [32]byte

	routes []httpapi.Route
}

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
		ids:     opts.RequestIDs,
		trusted: opts.Trusted,
	}
	if s.ids == nil {
		s.ids = httpapi.NewRequestIDs()
	}
	if opts.AdminToken != "" {
		s.adminTokenSet = true
		s.adminTokenHash = sha256.Sum256([]byte(opts.AdminToken))
	}
	s.backupper = opts.Backup
	s.eraser = opts.Eraser
	s.alerts = opts.Alerts
	s.analytics = newAnalyticsAPI(opts.Analytics, opts.Now, opts.Logger)
	s.checks = opts.ReadyChecks
	s.cluster = opts.Cluster
	s.sessions = newSessions(opts.Dashboard, opts.Now)
	s.throttle = newAuthThrottle(opts.AuthFailureLimit, opts.AuthFailureWindow, opts.Now)
	s.ipv6Prefix = opts.IPv6Prefix
	s.routes = append(s.adminRoutes(), s.dashboardRoutes()...)
	if opts.Metrics != nil {
		h, want := opts.Metrics, sha256.Sum256([]byte(opts.MetricsToken))
		s.routes = append(s.routes, httpapi.Route{Method: "GET", Path: "/metrics", Summary: "Prometheus metrics", Access: httpapi.AccessOpen, Handle: func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
			if opts.MetricsToken != "" {
				token, _ := httpapi.Bearer(r.Header.Get("Authorization"))
				got := sha256.Sum256([]byte(token))
				if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
					return httpapi.Errorf(httpapi.CodeUnauthorized, "send the metrics token as Authorization: Bearer <token>")
				}
			}
			h.ServeHTTP(w, r)
			return nil
		}})
	}
	if opts.DebugPprof {
		s.routes = append(s.routes, pprofRoutes()...)
	}
	s.routes = append(s.routes, opts.Service...)
	return s
}

// SetReady flips /readyz: false while starting and while draining.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Routes lists the admin listener's routes.
func (s *Server) Routes() []httpapi.Route { return append([]httpapi.Route(nil), s.routes...) }

func (s *Server) adminRoutes() []httpapi.Route {
	return append([]httpapi.Route{
		{Method: "GET", Path: "/healthz", Summary: "liveness", Access: httpapi.AccessOpen, Handle: s.healthz},
		{Method: "GET", Path: "/readyz", Summary: "readiness", Access: httpapi.AccessOpen, Handle: s.readyz},

		{Method: "POST", Path: "/admin/v1/keys", Summary: "create a key", Access: httpapi.AccessAdmin, Handle: s.createKey},
		{Method: "GET", Path: "/admin/v1/keys", Summary: "list keys", Access: httpapi.AccessAdmin, Handle: s.listKeys},
		{Method: "GET", Path: "/admin/v1/keys/:id", Summary: "show a key", Access: httpapi.AccessAdmin, Handle: s.getKey},
		{Method: "PATCH", Path: "/admin/v1/keys/:id", Summary: "change a key", Access: httpapi.AccessAdmin, Handle: s.patchKey},
		{Method: "DELETE", Path: "/admin/v1/keys/:id", Summary: "revoke a key", Access: httpapi.AccessAdmin, Handle: s.revokeKey},
		{Method: "POST", Path: "/admin/v1/keys/:id/rotate", Summary: "rotate a key's secret", Access: httpapi.AccessAdmin, Handle: s.rotateKey},
		{Method: "GET", Path: "/admin/v1/keys/:id/events", Summary: "a key's audit events", Access: httpapi.AccessAdmin, Handle: s.keyEvents},
		{Method: "DELETE", Path: "/admin/v1/keys/:id/data", Summary: "erase a key's usage data", Access: httpapi.AccessAdmin, Handle: s.eraseKeyData},
		{Method: "DELETE", Path: "/admin/v1/owners/:owner_id/data", Summary: "erase an owner's usage data", Access: httpapi.AccessAdmin, Handle: s.eraseOwnerData},
		{Method: "GET", Path: "/admin/v1/backup", Summary: "a consistent snapshot of the data file", Access: httpapi.AccessAdmin, Handle: s.backup},
		{Method: "GET", Path: "/admin/v1/cluster", Summary: "the instances of a cluster and their heartbeats", Access: httpapi.AccessAdmin, Handle: s.listInstances},
		{Method: "GET", Path: "/admin/v1/openapi.json", Summary: "this API's OpenAPI 3.1 description", Access: httpapi.AccessAdmin, Handle: s.openAPI},
	}, append(s.alertRoutes(), s.analyticsRoutes()...)...)
}

// Handler serves the admin listener.
func (s *Server) Handler() http.Handler {
	return s.ids.Middleware(httpapi.Router(s.routes, s.authorizeAdmin, s.log))
}

// authorizeAdmin checks the bearer token in constant time. Both sides are
// hashed first so the comparison does not leak the token's length either.
// Without a bearer token, the dashboard's session cookie (and, on a
// change, its CSRF header) will do: see session.go.
func (s *Server) authorizeAdmin(r *http.Request) *httpapi.Error {
	if !s.adminTokenSet {
		return httpapi.Errorf(httpapi.CodeAdminDisabled, "the admin API is disabled: no admin token is configured (set APIWARDEN_ADMIN_TOKEN or security.admin_token and restart)")
	}
	if usesSession(r) {
		return s.authorizeSession(r)
	}
	token, ok := httpapi.Bearer(r.Header.Get("Authorization"))
	if !ok {
		return httpapi.Errorf(httpapi.CodeUnauthorized, "send the admin token as Authorization: Bearer <token>")
	}
	return s.checkAdminToken(r, token)
}

// checkAdminToken compares a presented admin token in constant time (both
// sides hashed, so not even its length leaks). The right token always
// passes; a wrong one is 401, or 429 once its client network has sent
// too many (see authThrottle).
func (s *Server) checkAdminToken(r *http.Request, token string) *httpapi.Error {
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], s.adminTokenHash[:]) == 1 {
		return nil
	}
	client := enforce.ClientNetwork(s.trusted.ClientIP(httpapi.PeerAddr(r), r.Header.Values("X-Forwarded-For")), s.ipv6Prefix)
	f := s.throttle.failed(client)
	if !f.over {
		return httpapi.Errorf(httpapi.CodeUnauthorized, "the admin token is not valid")
	}
	if f.firstOver {
		s.log.Warn("wrong admin tokens keep coming from one client: answering them 429 until the window ends; the right token still works",
			"client", client.String(), "retry_after", f.retryAfter.Round(time.Second).String())
	}
	wait := max(int((f.retryAfter+time.Second-1)/time.Second), 1) // whole seconds, rounded up
	return &httpapi.Error{Code: httpapi.CodeTooManyAttempts, RetryAfter: wait,
		Message: fmt.Sprintf("the admin token is not valid, and too many wrong ones came from this address; wait %d seconds before trying again", wait)}
}

// actor names who made an admin change, for audit events. Scripts may add
// X-Apiwarden-Actor ("deploy-bot") to say more than "admin". Changes
// made through the dashboard's session are "dashboard".
func actor(r *http.Request) string {
	if usesSession(r) {
		return DashboardActor
	}
	a := r.Header.Get("X-Apiwarden-Actor")
	if a == "" || len(a) > 64 || !httpapi.IsPrintableWord(a) {
		return "admin"
	}
	return "admin:" + a
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
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
		return httpapi.Errorf(httpapi.CodeUnavailable, "not ready: starting or draining")
	}
	checks := map[string]string{}
	status := "ready"
	for _, c := range s.checks {
		if checks[c.Name] = c.Check(); checks[c.Name] != "ok" {
			status = "degraded"
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": status, "checks": checks})
	return nil
}
