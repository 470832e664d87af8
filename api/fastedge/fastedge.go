// Package fastedge serves apiwarden's enforcement listener on fasthttp
// instead of net/http ([server] edge = "fasthttp"). In proxy mode it
// serves the sidecar proxy (proxy.go: the common request natively, the
// rest handed to net/http with its connection, handoff.go; defer.go: which
// bodies fasthttp reads and which it leaves to net/http). Otherwise it
// serves forward auth and check: /v1/authorize,
// /v1/authorize/<path> (Envoy) and /v1/check are answered here, by the same
// gateway.Authorize and gateway.Check the net/http edge calls, so status
// codes, headers, bodies, telemetry and records are the same. Every other
// request on the listener (POST /v1/events, unknown paths and methods,
// request targets in absolute form) goes to the gateway's net/http handler
// through fasthttp's adaptor, which buffers the body first.
//
// What fasthttp costs (README.md, "The fasthttp edge"): no HTTP/2, and
// request bodies are read whole before a handler runs, up to a cap per
// path (bodyCap).
package fastedge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/api/httpapi"
)

// Options configure a Server. The timeouts and the header limit are the
// [server] keys of the same names.
type Options struct {
	Gateway *gateway.Gateway
	// Fallback is the gateway's net/http handler (gateway.Gateway.Handler).
	// Without a proxy it serves every request that is not forward auth or
	// check, through fasthttp's adaptor; in proxy mode it is the proxy
	// the handed-off connections are served by.
	Fallback http.Handler
	// MaxHeaderBytes is server.max_header_bytes: the gateway refuses
	// larger headers with 431 and the JSON body; the server's own read
	// buffer (twice as large, plus 4 KiB) only stops the absurd. In proxy
	// mode, where that buffer stays with each connection unless
	// ReduceIdleMemory pools it, it is max_header_bytes plus 4 KiB: larger
	// headers get fasthttp's 431 (parseError: the same status and code,
	// another message).
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ReduceIdleMemory returns a waiting keep-alive connection's read and
	// write buffers to a pool (fasthttp's ReduceMemoryUsage): half the
	// memory per idle connection, for one more read system call per
	// request (docs/BENCHMARKS.md, "Forward auth on fasthttp").
	ReduceIdleMemory bool
	Logger           *slog.Logger
}

// Server is the forward-auth and check listener on fasthttp. Build it with
// New; Serve, Shutdown and Close are safe for concurrent use.
type Server struct {
	gw       *gateway.Gateway
	fallback fasthttp.RequestHandler
	srv      *fasthttp.Server
	log      *slog.Logger
	headers  sync.Pool // of http.Header, one per answer being built

	// In proxy mode: the lean path's upstream client (nil: every request
	// is handed off) and answer bodies, and the net/http server of the
	// handed-off connections with its listener.
	up     *upstreamClient
	bodies sync.Pool // of *upstreamBody
	// scratch holds the gathered requests of the lean path and their
	// header maps: pooled, not locals of serveProxy, to keep them off the
	// stack under the decision.
	scratch sync.Pool // of *proxyScratch
	hs      *http.Server
	handed  *connListener
	// nonce starts the value of deferBody's header; bodyTimeout is
	// read_timeout.
	nonce       []byte
	bodyTimeout time.Duration
	// origin is the time exchange measures the upstream's time from: two
	// readings of time.Since it, the monotonic clock alone, cost one
	// clock read less than time.Now and time.Since.
	origin time.Time

	connsMu sync.Mutex
	conns   map[net.Conn]struct{} // open connections, for Close
	serving listeners             // what Serve listens on, for a stop before it
}

// New builds a server; it listens once Serve is called.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{gw: o.Gateway, fallback: fasthttpadaptor.NewFastHTTPHandler(o.Fallback), log: o.Logger,
		conns: map[net.Conn]struct{}{}, origin: time.Now()}
	s.headers.New = func() any { return make(http.Header, 8) }
	s.scratch.New = func() any { return new(proxyScratch) }
	readTimeout := o.ReadTimeout
	s.srv = &fasthttp.Server{
		Handler:      s.serve,
		ErrorHandler: s.parseError,
		// ReadTimeout bounds the first request byte and the headers, as
		// net/http's ReadHeaderTimeout does; HeaderReceived then gives
		// the body its own read_timeout and cap.
		ReadTimeout: o.ReadHeaderTimeout,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: readTimeout, MaxRequestBodySize: bodyCap(h.RequestURI()) + 1}
		},
		WriteTimeout:   o.WriteTimeout,
		IdleTimeout:    o.IdleTimeout,
		ReadBufferSize: 2*o.MaxHeaderBytes + 4096,
		// As net/http: no Server header, no default Content-Type.
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReduceMemoryUsage:     o.ReduceIdleMemory,
		CloseOnShutdown:       true,
		// Nothing here reads RequestCtx.Time (the gateway keeps its own
		// clock), so fasthttp need not read the clock for it at every
		// request (docs/BENCHMARKS.md, "apiwarden above its floor, second
		// pass"); its idle bookkeeping for Shutdown then runs on a clock
		// refreshed once a second.
		LazyRequestTime:       true,
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{o.Logger},
		ConnState:             s.track,
	}
	if o.Gateway.ProxyMode() {
		s.up, s.bodies, s.handed = newUpstream(o.Gateway.ProxyOptions()), newBodyPool(), newConnListener()
		s.srv.Handler = s.serveProxyMode
		// Bodies are read whole, and deferred from the header where net/http
		// must read them off the connection (defer.go), so that
		// reduce_idle_memory can return a waiting connection's read buffer;
		// fasthttp must not parse multipart bodies the proxy passes
		// through.
		s.nonce, s.bodyTimeout = newNonce(), readTimeout
		s.srv.DisablePreParseMultipartForm = true
		// Headers over max_header_bytes + 4 KiB get fasthttp's 431: the
		// read buffer, which reduce_idle_memory pools between requests and
		// which stays with the connection without it, is that large.
		s.srv.ReadBufferSize = o.MaxHeaderBytes + 4096
		s.srv.HeaderReceived = s.deferBody
		s.hs = &http.Server{Handler: o.Fallback, MaxHeaderBytes: 2*o.MaxHeaderBytes + 4096,
			ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			IdleTimeout: o.IdleTimeout, ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug)}
	}
	return s
}

// Serve answers connections from ln until Shutdown or Close; it returns
// nil then, like http.ErrServerClosed for net/http, and any other error
// that stopped it.
func (s *Server) Serve(ln net.Listener) error {
	ln, ok := s.serving.take(ln)
	if !ok {
		return nil
	}
	var handed chan error
	if s.hs != nil {
		handed = make(chan error, 1)
		go func() { handed <- serveHandedOff(s.hs, s.handed) }()
	}
	// Connections with lazy deadlines (deadline.go): fasthttp moves them
	// at every request.
	err := s.srv.Serve(deadlineListener{ln})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if handed != nil {
		if err != nil {
			s.hs.Close()
		}
		err = errors.Join(err, <-handed)
	}
	return err
}

// Shutdown stops accepting, closes idle connections, waits for requests
// in flight to be answered (their connections are closed then) and
// returns; or returns ctx's error when ctx ends first, leaving the rest to
// Close.
//
// In proxy mode the connections handed to net/http are drained the same
// way, by its Shutdown, and then the idle upstream connections are
// closed: the lean path's and those of the requests handed off.
func (s *Server) Shutdown(ctx context.Context) error {
	s.serving.stop()
	err := s.srv.ShutdownWithContext(ctx)
	if s.hs != nil {
		err = errors.Join(err, s.hs.Shutdown(ctx))
	}
	s.closeUpstream()
	return err
}

// closeUpstream closes the idle upstream connections: the lean path's,
// if it has any, and those of the requests handed to net/http, which the
// gateway's proxy forwards.
func (s *Server) closeUpstream() {
	if s.up != nil {
		s.up.closeIdle()
	}
	s.gw.CloseIdleUpstream()
}

// Close stops the server at once: it stops accepting and closes every
// open connection, requests in flight included, and the idle upstream
// connections.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.serving.stop()
	err := s.srv.ShutdownWithContext(ctx)
	s.connsMu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.connsMu.Unlock()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if s.hs != nil {
		err = errors.Join(err, s.hs.Close())
	}
	s.closeUpstream()
	return err
}

// track keeps the set of open connections for Close.
func (s *Server) track(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		s.connsMu.Lock()
		s.conns[c] = struct{}{}
		s.connsMu.Unlock()
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.connsMu.Lock()
		delete(s.conns, c)
		s.connsMu.Unlock()
	}
}

// bodyCap is the largest request body an endpoint takes: a /v1/check
// body of httpapi.MaxJSONBody; as much for /v1/authorize, whose body is
// read and not looked at (Envoy's ext_authz can send the original one
// along; net/http leaves it unread and takes any size); and the events
// cap for everything else. The server reads one byte more, so that the
// handler refuses a body just over the cap with its own answer.
func bodyCap(target []byte) int {
	path, _ := splitTarget(string(target))
	if path == "/v1/check" || isAuthorize(path) {
		return httpapi.MaxJSONBody
	}
	return maxFallbackBody
}

// maxFallbackBody is the body cap of POST /v1/events on net/http
// (api/gateway/events.go), which the fallback serves.
const maxFallbackBody = 32 << 20

// fasthttpLogger sends fasthttp's own messages to slog at debug level, as
// app.go does with net/http's ErrorLog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "msg", fmt.Sprintf(format, args...))
}
