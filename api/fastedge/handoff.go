package fastedge

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/valyala/fasthttp"
)

// A request the lean path does not take (an upgrade, Expect, a chunked or
// large body, HTTP/1.0, a target or header net/http might read
// differently) is handed, with its connection, to a net/http server that
// serves the gateway's proxy handler: the connection stays with net/http
// from then on. net/http reads the request line and headers that fasthttp
// serializes from what it parsed, then the body: one fasthttp read whole
// (of the Content-Length fasthttp parsed), or, for a request whose body
// deferBody left on the connection (defer.go), the body as the client
// sends it, under the framing fasthttp parsed (its Content-Length, or
// chunked); then the rest of the connection. fasthttp reads nothing of
// the connection after what it hands off.
//
// fasthttp answers Expect: 100-continue itself before the handler runs;
// the Expect header is left out of what net/http reads, so the client
// gets one 100 Continue.

// handoff hijacks the connection once the handler returns and serves it
// with the net/http server.
func (s *Server) handoff(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	h.Del("Expect")
	var body io.Reader
	if !s.undefer(h) && h.ContentLength() > 0 {
		// The body fasthttp read whole: a hijacked connection's request is
		// not reset until the hijack handler returns.
		body = bytes.NewReader(ctx.Request.Body())
	}
	head := bytes.Clone(h.Header())
	raw := ctx.Conn()
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		readers := []io.Reader{bytes.NewReader(head)}
		if body != nil {
			readers = append(readers, body)
		}
		hc := &handedConn{Conn: raw, r: io.MultiReader(append(readers, c)...), closed: make(chan struct{})}
		hc.drained = sync.NewCond(&hc.mu)
		if !s.handed.give(hc) {
			return // shutting down: fasthttp closes the connection
		}
		// fasthttp returns the hijacked connection's reader (and the
		// body stream's) to its pools once this returns.
		<-hc.closed
	})
}

// handedConn is a hijacked connection as net/http reads it: the replayed
// request first, then what fasthttp's reader holds and the connection.
// Writes and deadlines go to the socket itself. Close closes the socket
// and, once no Read is using fasthttp's reader any more, lets the hijack
// handler return; a Read after Close fails without touching the reader.
// Safe for concurrent use, as net/http uses a connection.
type handedConn struct {
	net.Conn
	r       io.Reader
	mu      sync.Mutex
	drained *sync.Cond // signalled when reading drops to 0
	reading int        // Reads in progress
	done    bool       // Close was called
	closed  chan struct{}
}

func (c *handedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.reading++
	c.mu.Unlock()
	n, err := c.r.Read(b)
	c.mu.Lock()
	if c.reading--; c.reading == 0 {
		c.drained.Broadcast()
	}
	c.mu.Unlock()
	return n, err
}

func (c *handedConn) Close() error {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.done = true
	c.mu.Unlock()
	err := c.Conn.Close() // a Read waiting on the socket returns
	c.mu.Lock()
	for c.reading > 0 {
		c.drained.Wait()
	}
	c.mu.Unlock()
	close(c.closed)
	return err
}

// connListener is the net/http server's listener: it accepts the
// connections handoff gives it. Safe for concurrent use.
type connListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newConnListener() *connListener {
	return &connListener{addr: &net.TCPAddr{}, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// give hands c to the server, or reports false once the listener is
// closed.
func (l *connListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// serveHandedOff runs the net/http server until Shutdown or Close.
func serveHandedOff(hs *http.Server, l *connListener) error {
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
