package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// upstreamPool keeps idle keep-alive connections to the proxy's upstream
// and bounds the connections carrying a request at once. The handler
// goroutine writes a request and reads the answer on one connection
// itself: http.Transport would hand both to a writer and a reader
// goroutine per connection, two wake-ups and channel hand-offs per
// request that a sidecar with one upstream does not need.
//
// The bound keeps the upstream side from growing with the client side:
// without it, 10,000 busy client connections opened thousands of upstream
// connections (a socket and 8 KiB of buffers each), most of them closed
// again at once because only max_idle_conns_per_host fit back in the pool.
type upstreamPool struct {
	addr          string // host:port
	dialer        *net.Dialer
	headerTimeout time.Duration
	idleTimeout   time.Duration
	idle          chan *upstreamConn
	busy          *Slots // one per connection carrying a request
}

type upstreamConn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	counted  bool // holds a token of busy
}

// newUpstreamPool returns nil for an upstream it cannot serve (not plain
// http); the proxy then uses http.Transport for everything.
func newUpstreamPool(u *url.URL, dialer *net.Dialer, headerTimeout, idleTimeout time.Duration, maxIdle, maxBusy int) *upstreamPool {
	if u.Scheme != "http" {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &upstreamPool{addr: addr, dialer: dialer, headerTimeout: headerTimeout, idleTimeout: idleTimeout,
		idle: make(chan *upstreamConn, maxIdle), busy: NewSlots(maxBusy, headerTimeout)}
}

// get returns an idle connection that is still fresh, or, with fresh set
// or none idle, dials one. It first waits, as long as ctx and the
// response-header timeout allow, until fewer than max_conns_per_host
// connections carry a request; the connection it returns counts as one
// until release, put or discard. Safe for concurrent use.
func (p *upstreamPool) get(ctx context.Context, fresh bool) (*upstreamConn, error) {
	if err := p.busy.Acquire(ctx); err != nil {
		return nil, err
	}
	if !fresh {
		if pc := p.takeIdle(); pc != nil {
			pc.counted = true
			return pc, nil
		}
	}
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		p.busy.Release()
		return nil, err
	}
	return &upstreamConn{Conn: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10), counted: true}, nil
}

// takeIdle returns an idle connection that is still fresh, closing the
// stale ones it finds first, or nil when none is idle.
func (p *upstreamPool) takeIdle() *upstreamConn {
	for {
		select {
		case pc := <-p.idle:
			if p.idleTimeout > 0 && time.Since(pc.lastUsed) > p.idleTimeout {
				pc.Close()
				continue
			}
			return pc
		default:
			return nil
		}
	}
}

// Slots bounds the requests to the upstream in flight at once
// (max_conns_per_host), on both edges' forwarding paths. Safe for
// concurrent use.
type Slots struct {
	c       chan struct{}
	timeout time.Duration
}

// NewSlots returns n slots (at least one); a wait for one longer than
// timeout (the response-header timeout; 0: no limit) fails.
func NewSlots(n int, timeout time.Duration) *Slots {
	return &Slots{c: make(chan struct{}, max(n, 1)), timeout: timeout}
}

// Acquire takes a slot, waiting for one when all are taken. A wait longer
// than the response-header timeout is an upstream too slow to answer:
// ErrUpstreamHeaderTimeout (504); one that ctx ends, ctx's error.
func (s *Slots) Acquire(ctx context.Context) error {
	select {
	case s.c <- struct{}{}:
		return nil
	default:
	}
	var timeout <-chan time.Time
	if s.timeout > 0 {
		t := time.NewTimer(s.timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case s.c <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return ErrUpstreamHeaderTimeout
	}
}

// Release gives back a slot Acquire took.
func (s *Slots) Release() { <-s.c }

// release stops counting pc against max_conns_per_host; the proxy calls it
// when an answer turns out to be a stream, which may hold its connection
// for hours and must not keep other requests waiting. Calling it again,
// or on a connection put back or discarded, does nothing.
func (p *upstreamPool) release(pc *upstreamConn) {
	if pc.counted {
		pc.counted = false
		p.busy.Release()
	}
}

// discard closes a connection that cannot carry another request.
func (p *upstreamPool) discard(pc *upstreamConn) {
	pc.Close()
	p.release(pc)
}

// closeIdle closes every idle connection. The proxy calls it when a
// connection turns out closed: an upstream that restarts closes all of
// them, and nothing notices while they sit idle, so without this each
// would fail one more request.
func (p *upstreamPool) closeIdle() {
	for {
		select {
		case pc := <-p.idle:
			pc.Close()
		default:
			return
		}
	}
}

// put returns a connection whose response was read to the end.
func (p *upstreamPool) put(pc *upstreamConn) {
	// The slot is given back once the connection is idle, so that a
	// request waiting for the slot takes this connection rather than
	// dialling one more; pc is settled first, as once idle it is another
	// request's.
	if pc.counted {
		pc.counted = false
		defer p.busy.Release()
	}
	if pc.br.Buffered() > 0 {
		pc.Close() // the upstream sent more than it announced
		return
	}
	pc.lastUsed = time.Now()
	select {
	case p.idle <- pc:
	default:
		pc.Close()
	}
}

// ErrUpstreamHeaderTimeout is what a slow upstream gets: a net.Error with
// Timeout() true, so the proxy answers 504.
var ErrUpstreamHeaderTimeout = &timeoutError{"timeout awaiting response headers from the upstream"}

// ErrUnaskedUpgrade is an upstream's 101 to a request that asked for no
// upgrade; the proxy answers 502 and closes the connection.
var ErrUnaskedUpgrade = errors.New("the upstream switched protocols without being asked to")

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// Replayable says whether a request whose upstream connection failed
// before an answer may be sent again, on both edges' lean paths: one
// without a body, of a method RFC 9110 (9.2.2) calls idempotent (GET,
// HEAD, OPTIONS, TRACE, PUT, DELETE). The upstream may have read it and
// acted before the connection broke, so a POST or PATCH, which it may
// not see twice, is never sent again, and neither is a body, which the
// lean path does not keep. Each edge sends a replayable request once more
// at most, after an error of a connection the upstream closed
// (StaleConnError). Safe for concurrent use.
func Replayable(method string, hasBody bool) bool {
	if hasBody {
		return false
	}
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// StaleConnError is what a reused keep-alive connection the upstream had
// already closed looks like.
func StaleConnError(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset by peer") || strings.Contains(s, "broken pipe")
}
