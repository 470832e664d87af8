package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// upstreamTransport is the proxy's client for its one upstream. Go's
// http.Transport hands every request to a writer and a reader goroutine
// per connection; here the handler's own goroutine writes the request and
// reads the response on a pooled connection, which saves two goroutine
// wake-ups and the channel traffic between them on every request. What it
// does not handle — protocol upgrades (WebSocket), Expect: 100-continue,
// TLS upstreams — goes to the standard transport.
type upstreamTransport struct {
	addr          string // host:port
	dialer        *net.Dialer
	headerTimeout time.Duration
	idleTimeout   time.Duration
	idle          chan *upstreamConn
	fallback      http.RoundTripper

	bufPool sync.Pool // *bufio.Writer, lent while a request is written
}

type upstreamConn struct {
	net.Conn
	br       *bufio.Reader
	lastUsed time.Time
}

func newUpstreamTransport(u *url.URL, dialer *net.Dialer, headerTimeout, idleTimeout time.Duration, maxIdle int, fallback http.RoundTripper) http.RoundTripper {
	if u.Scheme != "http" {
		return fallback
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	t := &upstreamTransport{addr: addr, dialer: dialer, headerTimeout: headerTimeout, idleTimeout: idleTimeout,
		idle: make(chan *upstreamConn, maxIdle), fallback: fallback}
	t.bufPool.New = func() any { return bufio.NewWriterSize(nil, 4<<10) }
	return t
}

// RoundTrip sends req on an idle connection or a new one. A request that
// can be replayed (no body, idempotent method) is retried once on a fresh
// connection when a reused one turns out to have been closed by the
// upstream meanwhile, as http.Transport does.
func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Upgrade") != "" || req.Header.Get("Expect") != "" || req.URL.Scheme != "http" {
		return t.fallback.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		pc, reused, err := t.get(req.Context())
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(pc, req)
		if err == nil {
			return resp, nil
		}
		pc.Close()
		if reused && attempt == 0 && replayable(req) && staleConnError(err) {
			continue
		}
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
}

// exchange writes the request and reads the response head on pc.
func (t *upstreamTransport) exchange(pc *upstreamConn, req *http.Request) (*http.Response, error) {
	// A cancelled request (the client went away) unblocks the I/O by
	// expiring the connection's deadline; the connection is then closed.
	stop := context.AfterFunc(req.Context(), func() { pc.SetDeadline(time.Unix(1, 0)) })
	bw := t.bufPool.Get().(*bufio.Writer)
	bw.Reset(pc)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	t.bufPool.Put(bw)
	if err != nil {
		stop()
		return nil, err
	}
	if t.headerTimeout > 0 {
		pc.SetReadDeadline(time.Now().Add(t.headerTimeout))
	}
	resp, err := http.ReadResponse(pc.br, req)
	if err != nil {
		stop()
		if ne, ok := err.(net.Error); ok && ne.Timeout() && req.Context().Err() == nil {
			return nil, errUpstreamHeaderTimeout
		}
		return nil, err
	}
	if !stop() {
		// The context ended while the head was read: the deadline is
		// poisoned, so the connection cannot be reused.
		resp.Body.Close()
		return nil, req.Context().Err()
	}
	pc.SetReadDeadline(time.Time{})
	reusable := !resp.Close && !req.Close && resp.ProtoAtLeast(1, 1)
	resp.Body = &upstreamBody{rc: resp.Body, pc: pc, t: t, reusable: reusable,
		eof: resp.Body == http.NoBody || resp.ContentLength == 0}
	return resp, nil
}

// errUpstreamHeaderTimeout is what a slow upstream gets: a net.Error with
// Timeout() true, so the proxy answers 504.
var errUpstreamHeaderTimeout = &timeoutError{"timeout awaiting response headers from the upstream"}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// get returns an idle connection that is still fresh, or dials one.
func (t *upstreamTransport) get(ctx context.Context) (*upstreamConn, bool, error) {
	for {
		select {
		case pc := <-t.idle:
			if t.idleTimeout > 0 && time.Since(pc.lastUsed) > t.idleTimeout {
				pc.Close()
				continue
			}
			return pc, true, nil
		default:
		}
		c, err := t.dialer.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return nil, false, err
		}
		return &upstreamConn{Conn: c, br: bufio.NewReaderSize(c, 4<<10)}, false, nil
	}
}

// put returns a connection whose response was read to the end.
func (t *upstreamTransport) put(pc *upstreamConn) {
	if pc.br.Buffered() > 0 {
		pc.Close() // the upstream sent more than it announced
		return
	}
	pc.lastUsed = time.Now()
	select {
	case t.idle <- pc:
	default:
		pc.Close()
	}
}

// upstreamBody hands the connection back when the body has been read to
// its end and closed; a body abandoned half way closes the connection.
type upstreamBody struct {
	rc       io.ReadCloser
	pc       *upstreamConn
	t        *upstreamTransport
	eof      bool
	reusable bool
	closed   bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.rc.Close()
	if b.eof && b.reusable && err == nil {
		b.t.put(b.pc)
	} else {
		b.pc.Close()
	}
	return err
}

func replayable(req *http.Request) bool {
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return req.Body == nil || req.Body == http.NoBody
	}
	return false
}

// staleConnError is what a reused keep-alive connection the upstream had
// already closed looks like.
func staleConnError(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset by peer") || strings.Contains(s, "broken pipe")
}
