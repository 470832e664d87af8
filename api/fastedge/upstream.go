package fastedge

import (
	"context"
	"errors"
	"math"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// upstreamClient is the lean path's client of the proxy's upstream: a
// fasthttp.HostClient, which keeps the keep-alive connections and lends
// each request its 4 KiB read and write buffers only while it runs (an
// idle upstream connection holds none), sending through leanTransport
// (transport.go: a small answer read whole, others streamed), with the
// [proxy] options:
//
//   - max_conns_per_host bounds the requests being answered at once
//     (busy); more wait for a slot up to response_header_timeout, then get
//     504. A streamed answer (SSE, no length) gives its slot back as soon
//     as its headers arrive, as the net/http path does: a stream may last
//     for hours. So HostClient's own MaxConns, which would count a
//     stream's connection for its whole life, is left unbounded.
//   - response_header_timeout bounds the wait for the answer's head only
//     (headerConn), never a long body or stream: HostClient's ReadTimeout
//     would bound every read of a streamed body too.
//   - idle_conn_timeout closes connections idle longer (fasthttp's own
//     10 s when it is 0); dial_timeout bounds the dial. The server closes
//     the idle ones when it has drained (closeIdle).
//   - A request that fails on a connection the upstream closed
//     (retryable) is sent once more when gateway.Replayable says it may
//     be (no body, an idempotent method), and no more, as on net/http's
//     lean path: the idle connections are closed first, as likely dead
//     (an upstream restart closes them all), so the retry dials. No
//     request is sent a third time, however many idle connections the
//     pool held (it once tried up to max_idle_conns_per_host + 1 times).
//
// Safe for concurrent use.
type upstreamClient struct {
	hc            *fasthttp.HostClient
	busy          *gateway.Slots
	headerTimeout time.Duration
}

// upstreamBufferSize is the read and write buffer a request to the
// upstream borrows: the head of a common answer fits.
const upstreamBufferSize = 4 << 10

// newUpstream returns the client of o's upstream, or nil when it is not
// plain http: every request then goes to the net/http proxy (handoff.go).
func newUpstream(o gateway.ProxyOptions) *upstreamClient {
	if o.Upstream == nil || o.Upstream.Scheme != "http" {
		return nil
	}
	addr := o.Upstream.Host
	if o.Upstream.Port() == "" {
		addr = net.JoinHostPort(o.Upstream.Hostname(), "80")
	}
	maxConns := o.MaxConnsPerHost
	if maxConns <= 0 {
		maxConns = gateway.DefaultMaxConnsPerHost
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	u := &upstreamClient{busy: gateway.NewSlots(maxConns, o.ResponseHeaderTimeout), headerTimeout: o.ResponseHeaderTimeout}
	u.hc = &fasthttp.HostClient{
		Addr: addr,
		Dial: func(addr string) (net.Conn, error) {
			c, err := dialer.Dial("tcp", addr)
			if err != nil || u.headerTimeout <= 0 {
				return c, err
			}
			// headerConn moves the read deadline at every request: the
			// socket's moves lazily (deadline.go).
			return &headerConn{Conn: newDeadlineConn(c), timeout: u.headerTimeout}, nil
		},
		MaxConns:                  math.MaxInt32, // busy bounds the requests
		MaxIdleConnDuration:       o.IdleConnTimeout,
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(req *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
			return false, u.retryable(req, err)
		},
		ReadBufferSize:           upstreamBufferSize,
		WriteBufferSize:          upstreamBufferSize,
		Transport:                newLeanTransport(),
		DisablePathNormalizing:   true, // the gateway chose the target
		NoDefaultUserAgentHeader: true,
		SecureErrorLogMessage:    true,
	}
	return u
}

// retryable, for HostClient's RetryIfErr, says whether req, which failed
// with err, is sent again (see upstreamClient); before a retry it closes
// the idle connections.
func (u *upstreamClient) retryable(req *fasthttp.Request, err error) bool {
	if !staleConn(err) {
		return false
	}
	u.hc.CloseIdleConnections()
	return gateway.Replayable(string(req.Header.Method()), len(req.Body()) > 0)
}

// closeIdle closes the idle upstream connections; those in use are closed
// as their requests end, if the upstream or the server says so, or stay
// for the next request. Safe for concurrent use.
func (u *upstreamClient) closeIdle() { u.hc.CloseIdleConnections() }

// staleConn says whether err is what a reused connection the upstream had
// closed gives.
func staleConn(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) || gateway.StaleConnError(err)
}

// acquire waits for a slot (see upstreamClient); slot says it got one,
// for release. A request builds what it sends only once it holds one:
// with 10,000 clients, most wait here, and each holds less while it does.
func (u *upstreamClient) acquire() (slot bool, err error) {
	if err := u.busy.Acquire(context.Background()); err != nil {
		return false, err
	}
	return true, nil
}

// do sends req and reads the answer's head into resp. The caller holds a
// slot.
func (u *upstreamClient) do(req *fasthttp.Request, resp *fasthttp.Response) error {
	return u.hc.Do(req, resp)
}

// release gives a slot back; release(false) does nothing.
func (u *upstreamClient) release(slot bool) {
	if slot {
		u.busy.Release()
	}
}

// headerConn is an upstream connection whose reads must bring an answer's
// final head within timeout of the request's last write: the deadline is
// set at each write and lifted before the first read after leanTransport
// has had fasthttp read the final head (headRead), so a body or a stream
// reads for as long as it lasts. The head's end is fasthttp's alone:
// headerConn reads no byte of the answer, so it cannot take a head to end
// sooner or later than fasthttp's parser does, whatever its line ends,
// leading empty lines, folded fields or splits across reads (a scan of
// its own once missed heads fasthttp takes, and kept the deadline on
// their bodies). Interim heads (1xx but 101, which fasthttp reads past)
// keep it: an upstream that sends 103 Early Hints and then stalls gets
// 504 at response_header_timeout, counted from the write as net/http's
// lean path (api/gateway/forward.go) and http.Transport count it.
// Lifting it at the next read, not as soon as the head has been read,
// saves a deadline system call a request in the common case, where the
// head and the whole body come in one read: the next write sets a new
// deadline anyway, and an idle connection in the pool is not read
// (docs/BENCHMARKS.md, "Cutting CPU per request"). The read deadline is
// its alone: leanTransport sets none, and HostClient's calls are ignored
// (SetReadDeadline). It needs leanTransport: HostClient's own transport
// never calls headRead, so every body would be cut at the timeout.
// HostClient uses a connection from one goroutine at a time.
type headerConn struct {
	net.Conn
	timeout time.Duration
	waiting bool // for the end of the final head
	armed   bool // a read deadline is set
}

func (c *headerConn) Write(b []byte) (int, error) {
	c.waiting = true
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	c.armed = true
	return c.Conn.Write(b)
}

func (c *headerConn) Read(b []byte) (int, error) {
	if !c.waiting && c.armed {
		// A read past the head: the body has no deadline.
		if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
			return 0, err
		}
		c.armed = false
	}
	return c.Conn.Read(b)
}

// headRead tells c that fasthttp has read the answer's final head from
// it: the reads that follow, of the body, run without the deadline.
func (c *headerConn) headRead() { c.waiting = false }

// SetReadDeadline ignores HostClient's calls: see headerConn.
func (c *headerConn) SetReadDeadline(time.Time) error { return nil }
