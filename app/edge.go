package app

import (
	"context"
	"errors"
	"net"

	"github.com/apiwarden/apiwarden/api/fastedge"
	"github.com/apiwarden/apiwarden/config"
)

// server is what Run needs of a listener's HTTP server: net/http's, or
// api/fastedge's for the fasthttp edge. Serve returns nil or
// http.ErrServerClosed once Shutdown or Close is called.
type server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
	Close() error
}

// checkEdge refuses the fasthttp edge where config validation does (a
// configuration built in code skips it): without a listener of its own.
func (a *App) checkEdge() error {
	if a.cfg.Server.EdgeServer() != config.EdgeFastHTTP {
		return nil
	}
	if a.shared() {
		return errors.New(`server.edge "fasthttp" serves the enforcement listener on its own: it needs an admin_listen other than listen`)
	}
	return nil
}

// enforcementServer is the server of listen when it has a listener of
// its own: fasthttp for the proxy, or forward auth and check, when
// server.edge says so, else net/http. Either closes the proxy's idle
// upstream connections once it has drained.
func (a *App) enforcementServer() server {
	s := a.cfg.Server
	if s.EdgeServer() != config.EdgeFastHTTP {
		return a.api.Gateway().HTTPServer(a.httpServer(nil))
	}
	return fastedge.New(fastedge.Options{Gateway: a.api.Gateway(), Fallback: a.api.EnforcementHandler(),
		MaxHeaderBytes: s.MaxHeaderBytes, ReadHeaderTimeout: s.ReadHeaderTimeout.D(), ReadTimeout: s.ReadTimeout.D(),
		WriteTimeout: s.WriteTimeout.D(), IdleTimeout: s.IdleTimeout.D(), ReduceIdleMemory: s.ReduceIdleMemory, Logger: a.log})
}
