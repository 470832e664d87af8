// Package gateway is apiwarden's request edge: the sidecar proxy, forward
// auth (/v1/authorize), the check API (/v1/check) and event ingest
// (/v1/events). Every entry point turns a request into enforce.Facts the
// same way, asks the one enforce.Engine, answers with the same headers
// and error body, and records the request. The hot paths allocate little
// and take no lock of their own; see the benchmarks beside them.
package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
)

// KeyLookup is what event ingest needs of the key service: a key's owner
// and tier, to file records under them.
type KeyLookup interface {
	Get(id string) (keys.Key, error)
}

var _ KeyLookup = (*keys.Service)(nil)

// Options configure a Gateway.
type Options struct {
	Gate GateOptions
	// Proxy, when its Upstream is set, turns on proxy mode: Handler
	// forwards every path upstream, and the /v1 routes (Routes) are for
	// another listener to serve.
	Proxy ProxyOptions
	// Events takes POST /v1/events records; nil answers 503.
	Events EventSink
	// Keys checks the key ids of ingested records; nil checks nothing.
	Keys KeyLookup
	// Ingest bounds the records Events takes.
	Ingest IngestLimits
	// RequestIDs names requests; nil draws a generator of its own.
	RequestIDs *httpapi.RequestIDs
	Now        func() time.Time
	Logger     *slog.Logger
}

// Gateway holds the request edge's handlers. Build it with New.
type Gateway struct {
	gate   *gate
	events EventSink
	keys   KeyLookup
	ingest IngestLimits
	proxy  *proxy // nil without an upstream
	ids    *httpapi.RequestIDs
	now    func() time.Time
	log    *slog.Logger
}

// New builds a gateway.
func New(opts Options) *Gateway {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RequestIDs == nil {
		opts.RequestIDs = httpapi.NewRequestIDs()
	}
	if opts.Ingest.MaxAge <= 0 {
		opts.Ingest.MaxAge = metrics.DefaultMaxEventAge
	}
	if opts.Ingest.Routes == nil {
		opts.Ingest.Routes = metrics.NewRouteCap(metrics.DefaultMaxIngestedRoutes)
	}
	g := &Gateway{gate: newGate(opts.Gate), events: opts.Events, keys: opts.Keys, ingest: opts.Ingest,
		ids: opts.RequestIDs, now: opts.Now, log: opts.Logger}
	if opts.Proxy.Upstream != nil {
		g.proxy = newProxy(g.gate, opts.Proxy, opts.RequestIDs, opts.Now, opts.Logger)
	}
	return g
}

// ProxyMode reports whether the gateway forwards requests upstream.
func (g *Gateway) ProxyMode() bool { return g.proxy != nil }

// DecisionMayWait reports whether a decision (DecideProxy, and the
// checks of /v1/authorize and /v1/check) may wait on another process:
// when the engine's limits are shared through Redis
// (enforce.Engine.MayWait), or when the Decider is not the enforce.Engine,
// whose waits the gateway cannot know. A server whose threads must never
// block (api/loopedge) decides such requests off them.
func (g *Gateway) DecisionMayWait() bool {
	return g.gate.engine == nil || g.gate.engine.MayWait()
}

// Routes are the /v1 routes apps and proxies call.
func (g *Gateway) Routes() []httpapi.Route {
	var rs []httpapi.Route
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		rs = append(rs,
			httpapi.Route{Method: m, Path: "/v1/authorize", Summary: "forward auth (nginx, Traefik, Caddy)",
				Access: httpapi.AccessService, Handle: g.authorize},
			httpapi.Route{Method: m, Path: "/v1/authorize/*path", Summary: "forward auth (Envoy ext_authz appends the path)",
				Access: httpapi.AccessService, Handle: g.authorize})
	}
	return append(rs,
		httpapi.Route{Method: "POST", Path: "/v1/check", Summary: "decide a described request",
			Access: httpapi.AccessService, Handle: g.check},
		httpapi.Route{Method: "POST", Path: "/v1/events", Summary: "ingest request records (JSON array or NDJSON)",
			Access: httpapi.AccessService, Handle: g.ingestEvents})
}

// Handler serves the enforcement listener: the proxy in proxy mode, else
// the /v1 routes.
func (g *Gateway) Handler() http.Handler {
	if g.proxy != nil {
		return g.ids.Middleware(g.proxy)
	}
	return g.ids.Middleware(httpapi.Router(g.Routes(), nil, g.log))
}
