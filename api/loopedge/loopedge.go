// Package loopedge serves the sidecar proxy's common request on event
// loops ([server] edge = "evloop", what "auto" picks for a proxy to an
// http:// upstream): one loop a CPU, each on
// a locked thread with its own epoll set and its own pool of idle
// upstream connections (pool.go), every socket non-blocking and
// level-triggered. A request of the plain shape (head.go) is decided by
// gateway.DecideProxy on the loop (decide.go), written to an upstream
// connection it holds until its answer is relayed back, with no
// goroutine, no channel and no scheduler hand-off between the client's
// bytes and the upstream's (docs/BENCHMARKS.md, "An event-loop floor" and
// "An event-loop edge for the lean path (twelfth session)").
//
// The decision must never block a loop: where it may wait (limits shared
// through Redis, gateway.Gateway.DecisionMayWait) it is made on a
// goroutine and comes back to the loop through a completion queue
// (async.go). How the edge differs from the fasthttp edge is in
// README.md, "The event-loop edge".
package loopedge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/apiwarden/apiwarden/api/fastedge"
	"github.com/apiwarden/apiwarden/api/gateway"
)

// Options configure a Server. MaxHeaderBytes is server.max_header_bytes.
type Options struct {
	Gateway        *gateway.Gateway // in proxy mode, with a plain-HTTP upstream
	MaxHeaderBytes int
	// Loops is how many event loops serve; 0 means one a CPU the process
	// may use (procs.go), or one fewer (at least one) where decisions may
	// wait (async.go).
	Loops int
	// Handoff is the fasthttp edge of the same gateway, which serves a
	// client connection whose request the loops do not (any other shape
	// than the plain one, head.go), from that request on; its Serve and
	// drain are this server's. nil: such a request is answered 400, 501
	// or 431 and its connection closed.
	Handoff *fastedge.Server
	// Timeouts are the server's; Timeouts.ResponseHeader, when zero, is
	// the gateway's proxy.response_header_timeout.
	Timeouts Timeouts
	Logger   *slog.Logger
}

// Server is the proxy listener on event loops. Build it with New; Serve,
// Shutdown and Close are safe for concurrent use.
type Server struct {
	gw          *gateway.Gateway
	log         *slog.Logger
	upstream    netip.AddrPort
	headLimit   int
	loops       int
	fast        *fastedge.Server
	timeouts    Timeouts
	slots       *slots            // proxy.max_conns_per_host, across the loops
	maxIdle     int               // a loop's pool's size: its share of proxy.max_idle_conns_per_host
	idleTimeout time.Duration     // proxy.idle_conn_timeout
	mayWait     bool              // decisions go off the loops (async.go)
	dispatch    chan *offDecision // to the dispatcher of those decisions; nil where none waits

	mu      sync.Mutex
	stopped bool
	ended   bool // the loops ended and closed their fds
	running []*loop
	done    chan struct{} // closed when Serve's loops have ended
	turn    atomic.Uint32 // the loop that serves the next accepted connection (balance.go)
}

// New builds a server for the gateway's proxy; it listens once Serve is
// called. It fails for an upstream it cannot reach on a loop: not plain
// HTTP, or a host name that does not resolve.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	mayWait := o.Gateway.DecisionMayWait()
	if o.Loops <= 0 {
		o.Loops = defaultLoops()
		if mayWait && o.Loops > 1 {
			// The decisions off the loops, the Redis client and the
			// network poller run on the Ps the loops leave: one loop
			// fewer served 1.24x the req/s at 0.88x the CPU a request
			// (docs/BENCHMARKS.md, "The event-loop edge with Redis
			// (thirteenth session)").
			o.Loops--
		}
	}
	if !o.Gateway.ProxyMode() {
		return nil, errors.New("loopedge: the event-loop edge serves the proxy only")
	}
	upstream, err := upstreamAddr(o.Gateway.ProxyOptions().Upstream)
	if err != nil {
		return nil, err
	}
	if o.Timeouts.ResponseHeader == 0 {
		o.Timeouts.ResponseHeader = o.Gateway.ProxyOptions().ResponseHeaderTimeout
	}
	po := o.Gateway.ProxyOptions()
	maxConns := po.MaxConnsPerHost
	if maxConns <= 0 {
		maxConns = gateway.DefaultMaxConnsPerHost
	}
	// The gateway refuses heads over max_header_bytes with its own 431;
	// the loop reads 4 KiB more before it gives up, as api/fastedge does.
	s := &Server{gw: o.Gateway, log: o.Logger, upstream: upstream,
		headLimit: o.MaxHeaderBytes + 4096, loops: o.Loops, fast: o.Handoff, timeouts: o.Timeouts, done: make(chan struct{}),
		slots: &slots{limit: int64(maxConns)}, idleTimeout: po.IdleConnTimeout,
		maxIdle: max((po.MaxIdleConnsPerHost+o.Loops-1)/o.Loops, 1), mayWait: mayWait}
	if mayWait {
		s.dispatch = make(chan *offDecision, dispatchSize)
	}
	return s, nil
}

// upstreamAddr resolves a plain-HTTP upstream's address once.
func upstreamAddr(u *url.URL) (netip.AddrPort, error) {
	if u == nil || u.Scheme != "http" {
		return netip.AddrPort{}, fmt.Errorf("loopedge: the upstream must be http://host:port, got %v", u)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	a, err := net.ResolveTCPAddr("tcp", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("loopedge: upstream %q: %w", u.Host, err)
	}
	return a.AddrPort(), nil
}

// sockaddr is a loop's own socket address of ap: unix.Connect writes into
// the one it is given, so loops do not share one.
func sockaddr(ap netip.AddrPort) (unix.Sockaddr, int) {
	if a := ap.Addr().Unmap(); a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, unix.AF_INET
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}, unix.AF_INET6
}

// Serve answers connections from ln, a TCP listener, on the server's
// loops until Shutdown or Close; it returns nil then, or the error that
// kept the loops from starting. Every loop watches ln's socket and takes
// one connection at a time from it, so the loops share new connections.
// The hand-off edge, if any, serves meanwhile, and Serve returns once it
// stopped too.
func (s *Server) Serve(ln net.Listener) (err error) {
	defer ln.Close()
	if s.fast != nil {
		handed := make(chan error, 1)
		go func() { handed <- s.fast.Serve(fastedge.IdleListener(ln.Addr())) }()
		defer func() {
			s.mu.Lock()
			stopped := s.stopped
			s.mu.Unlock()
			if !stopped || err != nil {
				s.fast.Close() // nobody else stops it
			}
			err = errors.Join(err, <-handed)
		}()
	}
	fd, err := dupFD(ln)
	if err != nil {
		return err
	}
	// The listening socket closes once every loop has left it (a drain's
	// first step, or the loop's end), so that a drain refuses new
	// connections at once rather than leaving them in the backlog.
	var unlistened sync.WaitGroup
	unlistened.Add(s.loops)
	listenClosed := make(chan struct{})
	go func() {
		unlistened.Wait()
		_ = unix.Close(fd)
		ln.Close()
		close(listenClosed)
	}()
	defer func() { <-listenClosed }()
	notStarted := func() { // no loop runs to leave the listener
		for range s.loops {
			unlistened.Done()
		}
	}
	s.mu.Lock()
	if s.stopped || s.running != nil {
		s.mu.Unlock()
		notStarted()
		return nil
	}
	for i := range s.loops {
		l, err := s.newLoop(fd, i)
		l.unlisten = unlistened.Done
		if err != nil {
			notStarted()
			for _, l := range s.running {
				l.closeFDs()
			}
			s.running = nil
			s.mu.Unlock()
			return err
		}
		s.running = append(s.running, l)
	}
	s.mu.Unlock()
	if s.dispatch != nil {
		go dispatchDecisions(s.dispatch)
	}
	var wg sync.WaitGroup
	for _, l := range s.running {
		wg.Go(l.run)
	}
	wg.Wait()
	if s.dispatch != nil {
		close(s.dispatch) // the loops hand out no more
	}
	s.mu.Lock()
	s.ended = true // no wake of a closed fd
	for _, l := range s.running {
		l.closeFDs()
	}
	s.mu.Unlock()
	close(s.done)
	return nil
}

// dupFD is a duplicate of ln's socket, which the loops poll and accept
// from; it shares ln's non-blocking mode.
func dupFD(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("loopedge: %T is not a socket listener", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(raw uintptr) { fd, err = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0) })
	return fd, errors.Join(cerr, err)
}

// Shutdown stops accepting, lets every loop finish the answers in flight
// and close the idle connections, and returns once the loops ended,
// then drains the hand-off edge; or returns ctx's error when ctx ends
// first, the loops then stopped at once.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.stopLoops(true) != nil {
		select {
		case <-s.done:
		case <-ctx.Done():
			s.stopLoops(false)
			<-s.done
			err = ctx.Err()
		}
	}
	if s.fast != nil {
		err = errors.Join(err, s.fast.Shutdown(ctx))
	}
	return err
}

// Close stops the loops at once, closing every connection, answers in
// flight included, and waits for them; and closes the hand-off edge.
func (s *Server) Close() error {
	if s.stopLoops(false) != nil {
		<-s.done
	}
	if s.fast != nil {
		return s.fast.Close()
	}
	return nil
}

// stopLoops tells every running loop to drain (or to stop at once) and
// returns them (nil: none ran). Later calls to Serve serve nothing.
func (s *Server) stopLoops(drain bool) []*loop {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for _, l := range s.running {
		if !s.ended {
			l.wake(drain)
		}
	}
	return s.running
}

// newLoop makes loop i's epoll set, watching the listener listenFD and
// the loop's own wake fd.
func (s *Server) newLoop(listenFD, i int) (l *loop, err error) {
	l = &loop{s: s, gw: s.gw, log: s.log, listenFD: listenFD, epfd: -1, wakeFD: -1}
	l.upstream, l.domain = sockaddr(s.upstream)
	defer func() {
		if err != nil {
			l.closeFDs()
			err = fmt.Errorf("loopedge: loop %d: %w", i, err)
		}
	}()
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return l, err
	}
	if l.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return l, err
	}
	for _, fd := range []int{listenFD, l.wakeFD} {
		if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return l, err
		}
	}
	l.now = time.Now()
	return l, nil
}
