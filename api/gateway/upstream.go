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

// upstreamPool keeps idle keep-alive connections to the proxy's upstream.
// The handler goroutine writes a request and reads the answer on one
// connection itself: http.Transport would hand both to a writer and a
// reader goroutine per connection, two wake-ups and channel hand-offs per
// request that a sidecar with one upstream does not need.
type upstreamPool struct {
	addr          string // host:port
	dialer        *net.Dialer
	headerTimeout time.Duration
	idleTimeout   time.Duration
	idle          chan *upstreamConn
}

type upstreamConn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

// newUpstreamPool returns nil for an upstream it cannot serve (not plain
// http); the proxy then uses http.Transport for everything.
func newUpstreamPool(u *url.URL, dialer *net.Dialer, headerTimeout, idleTimeout time.Duration, maxIdle int) *upstreamPool {
	if u.Scheme != "http" {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &upstreamPool{addr: addr, dialer: dialer, headerTimeout: headerTimeout, idleTimeout: idleTimeout,
		idle: make(chan *upstreamConn, maxIdle)}
}

// get returns an idle connection that is still fresh, or dials one.
// reused says the connection has carried a request before, so a failure
// on it may only mean the upstream closed it while it was idle.
func (p *upstreamPool) get(ctx context.Context) (pc *upstreamConn, reused bool, err error) {
	for {
		select {
		case pc := <-p.idle:
			if p.idleTimeout > 0 && time.Since(pc.lastUsed) > p.idleTimeout {
				pc.Close()
				continue
			}
			return pc, true, nil
		default:
		}
		pc, err := p.dial(ctx)
		return pc, false, err
	}
}

// dial opens a new connection, bypassing the idle ones.
func (p *upstreamPool) dial(ctx context.Context) (*upstreamConn, error) {
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &upstreamConn{Conn: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, nil
}

// closeIdle closes every idle connection. The proxy calls it when a reused
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

// errUpstreamHeaderTimeout is what a slow upstream gets: a net.Error with
// Timeout() true, so the proxy answers 504.
var errUpstreamHeaderTimeout = &timeoutError{"timeout awaiting response headers from the upstream"}

// errUnaskedUpgrade is an upstream's 101 to a request that asked for no
// upgrade; the proxy answers 502 and closes the connection.
var errUnaskedUpgrade = errors.New("the upstream switched protocols without being asked to")

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// staleConnError is what a reused keep-alive connection the upstream had
// already closed looks like.
func staleConnError(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset by peer") || strings.Contains(s, "broken pipe")
}
