package gateway

import (
	"context"
	"net/http"
	"sync/atomic"
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
	gw     *Gateway
	closed atomic.Bool // Close was called
}

// HTTPServer returns hs, serving g's Handler, as an HTTPServer.
func (g *Gateway) HTTPServer(hs *http.Server) *HTTPServer {
	s := &HTTPServer{Server: hs, gw: g}
	hs.Handler = s.closingAfterClose(g.Handler())
	return s
}

// closingAfterClose wraps h so that a request whose handler ends after
// Close closes the idle upstream connections, its own among them: Close
// does not wait for running handlers, and each puts its upstream
// connection back in the pool when it ends. The handler's put comes
// before its load of closed, and Close's store before its own
// CloseIdleUpstream, so either the handler sees closed or Close finds
// the connection idle. The cost on the request path is a call and an atomic load
// (BenchmarkClosingAfterClose).
func (s *HTTPServer) closingAfterClose(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		// No defer: a handler that panics (http.ErrAbortHandler) has
		// closed its upstream connection, not pooled it.
		if s.closed.Load() {
			s.gw.CloseIdleUpstream()
		}
	})
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
// http.Server's does, and the idle upstream connections. It does not wait
// for the handlers still running; the upstream connection of each is
// closed when it ends. Safe for concurrent use, and to call again.
func (s *HTTPServer) Close() error {
	s.closed.Store(true)
	err := s.Server.Close()
	s.gw.CloseIdleUpstream()
	return err
}
