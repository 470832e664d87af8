// Package api puts apiwarden's two HTTP edges on its two listeners. The
// request edge (api/gateway: the proxy, forward auth, check, events) and
// the admin edge (api/admin: admin API, dashboard, health, metrics) are
// built and tested on their own; what they share — the error body, the
// status table, request ids, the router — is api/httpapi. This package
// only decides which listener serves what: with an upstream the
// enforcement listener proxies every path and the /v1 routes move to the
// admin listener; with listen and admin_listen on one address, one
// handler serves both route sets.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/api/httpapi"
)

// Options configure both edges.
type Options struct {
	Gateway gateway.Options
	Admin   admin.Options
	// SharedListener says listen and admin_listen are the same address
	// (allowed without an upstream): one handler serves both route sets.
	SharedListener bool
	// Now and Logger are given to each edge that sets none of its own.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server holds both edges. Build it with New.
type Server struct {
	gateway *gateway.Gateway
	admin   *admin.Server
}

// New builds both edges with one request-id generator, so that ids are
// unique across the listeners. The admin edge's throttle reads client
// addresses with the gateway's trusted proxies unless it has its own.
func New(opts Options) *Server {
	ids := httpapi.NewRequestIDs()
	g, a := opts.Gateway, opts.Admin
	g.RequestIDs, a.RequestIDs = ids, ids
	g.Now, a.Now = orNow(g.Now, opts.Now), orNow(a.Now, opts.Now)
	if g.Logger == nil {
		g.Logger = opts.Logger
	}
	if a.Logger == nil {
		a.Logger = opts.Logger
	}
	if a.Trusted == nil {
		a.Trusted = g.Gate.Trusted
	}
	gw := gateway.New(g)
	if gw.ProxyMode() || opts.SharedListener {
		a.Service = append(a.Service, gw.Routes()...)
	}
	return &Server{gateway: gw, admin: admin.New(a)}
}

func orNow(own, shared func() time.Time) func() time.Time {
	if own != nil {
		return own
	}
	return shared
}

// Gateway is the request edge, for a server other than net/http to
// answer from (api/fastedge).
func (s *Server) Gateway() *gateway.Gateway { return s.gateway }

// Admin is the admin edge: readiness, streams, routes, OpenAPI.
func (s *Server) Admin() *admin.Server { return s.admin }

// AdminHandler serves admin_listen.
func (s *Server) AdminHandler() http.Handler { return s.admin.Handler() }

// EnforcementHandler serves listen: the proxy in proxy mode, else the
// /v1 routes.
func (s *Server) EnforcementHandler() http.Handler { return s.gateway.Handler() }
