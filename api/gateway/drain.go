package gateway

import (
	"context"
	"net/http"
)

// CloseIdleUpstream closes the proxy's idle upstream connections, those of
// the lean path and those of httputil.ReverseProxy; those carrying a
// request stay, and go back to the pool when it ends. A server calls it
// once it has drained, so that the upstream sees its connections close
// when apiwarden stops, not at the process's exit. Without an upstream it
// does nothing. Safe for concurrent use, and to call again.
func (g *Gateway) CloseIdleUpstream() {
	if g.proxy == nil {
		return
	}
	if g.proxy.upstream != nil {
		g.proxy.upstream.closeIdle()
	}
	g.proxy.rt.CloseIdleConnections()
}

// HTTPServer is net/http's server of the enforcement listener: its
// Shutdown and Close also close the proxy's idle upstream connections
// (CloseIdleUpstream), as api/fastedge's server does.
type HTTPServer struct {
	*http.Server
	gw *Gateway
}

// HTTPServer returns hs, serving g's Handler, as an HTTPServer.
func (g *Gateway) HTTPServer(hs *http.Server) *HTTPServer {
	hs.Handler = g.Handler()
	return &HTTPServer{Server: hs, gw: g}
}

// Shutdown drains as http.Server's does (stops accepting, closes idle
// client connections, waits for the requests in flight), then closes the
// idle upstream connections: all of them once the drain is complete.
// When ctx ends first it returns ctx's error, and the connections of the
// requests still running stay until Close. Safe for concurrent use.
func (s *HTTPServer) Shutdown(ctx context.Context) error {
	err := s.Server.Shutdown(ctx)
	s.gw.CloseIdleUpstream()
	return err
}

// Close closes the listeners and every client connection, as
// http.Server's does, and the idle upstream connections. A handler still
// running (Close does not wait for it) may put its upstream connection
// back in the pool afterwards, where it stays until the process exits.
func (s *HTTPServer) Close() error {
	err := s.Server.Close()
	s.gw.CloseIdleUpstream()
	return err
}
