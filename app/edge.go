package app

import (
	"context"
	"fmt"
	"net"

	"github.com/apiwarden/apiwarden/api/fastedge"
	"github.com/apiwarden/apiwarden/api/loopedge"
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

// checkEdge refuses the fasthttp and evloop edges where config
// validation does (a configuration built in code skips it): without a
// listener of its own; and evloop but in proxy mode.
func (a *App) checkEdge() error {
	edge := a.edge
	if edge != config.EdgeFastHTTP && edge != config.EdgeEvLoop {
		return nil
	}
	if a.shared() {
		return fmt.Errorf("server.edge %q serves the enforcement listener on its own: it needs an admin_listen other than listen", edge)
	}
	if edge == config.EdgeEvLoop {
		return a.cfg.EvLoopFits()
	}
	return nil
}

// enforcementServer is the server of listen when it has a listener of
// its own: fasthttp for the proxy, or forward auth and check, or the
// proxy's event loops (handing what they do not serve to fasthttp), when
// server.edge says so, else net/http. Each closes the proxy's idle
// upstream connections once it has drained.
func (a *App) enforcementServer() (server, error) {
	s := a.cfg.Server
	switch a.edge {
	case config.EdgeEvLoop:
		return loopedge.New(loopedge.Options{Gateway: a.api.Gateway(), MaxHeaderBytes: s.MaxHeaderBytes,
			Handoff: a.fastServer(), Logger: a.log, Timeouts: loopedge.Timeouts{ReadHeader: s.ReadHeaderTimeout.D(),
				Idle: s.IdleTimeout.D(), Write: s.WriteTimeout.D()}})
	case config.EdgeFastHTTP:
		return a.fastServer(), nil
	}
	return a.api.Gateway().HTTPServer(a.httpServer(nil)), nil
}

// fastServer is the fasthttp edge of listen.
func (a *App) fastServer() *fastedge.Server {
	s := a.cfg.Server
	return fastedge.New(fastedge.Options{Gateway: a.api.Gateway(), Fallback: a.api.EnforcementHandler(),
		MaxHeaderBytes: s.MaxHeaderBytes, ReadHeaderTimeout: s.ReadHeaderTimeout.D(), ReadTimeout: s.ReadTimeout.D(),
		WriteTimeout: s.WriteTimeout.D(), IdleTimeout: s.IdleTimeout.D(), ReduceIdleMemory: s.ReduceIdleMemory, Logger: a.log})
}
