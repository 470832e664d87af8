package fastedge

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// deadlineConn is a connection whose deadlines reach the socket only when
// they must. fasthttp moves the read deadline of a keep-alive connection
// twice a request (idle_timeout, then read_header_timeout from the first
// byte) and the write deadline once (write_timeout), and headerConn moves
// an upstream connection's at every request: each a call into the
// runtime's poller that resets a timer, about 1 µs a proxied request in
// all, where the floor of docs/bench/bareproxy sets none
// (docs/BENCHMARKS.md, "apiwarden above its floor").
//
// A deadline moved later is only noted: the socket keeps the earlier one,
// and when that one fires, the Read or Write it ended is resumed under the
// deadline last set, which is then put on the socket. A deadline moved
// earlier, or set where the socket has none, reaches the socket at once,
// so a deadline in the past still ends a Read waiting in another goroutine
// (net/http's abortPendingRead). A Read or Write thus fails with
// os.ErrDeadlineExceeded at the deadline last set, as on the socket
// itself, never at an earlier one. In the common case a connection's
// socket deadline moves once per read_header_timeout, not at every
// request.
//
// Safe for concurrent use, as a net.Conn is.
type deadlineConn struct {
	net.Conn
	read, write lazyDeadline
}

// newDeadlineConn returns c with lazy deadlines.
func newDeadlineConn(c net.Conn) *deadlineConn {
	return &deadlineConn{Conn: c}
}

// lazyDeadline is one direction's deadline: the one set last, and the one
// on the socket, which is never later (zero: none); mu guards both.
type lazyDeadline struct {
	mu     sync.Mutex
	want   time.Time
	socket time.Time
}

// note notes t as the deadline and reports whether it must go on the
// socket now: it does unless the socket's comes first.
func (d *lazyDeadline) note(t time.Time) bool {
	d.want = t
	// None wanted, or the socket's comes first: it stays.
	if t.IsZero() || !d.socket.IsZero() && !t.Before(d.socket) {
		return false
	}
	d.socket = t
	return true
}

// due is called when the socket's deadline ended a call: it reports
// whether the deadline set since is still ahead, and then takes it as the
// socket's, to be put there for the call to go on.
func (d *lazyDeadline) due() (time.Time, bool) {
	if !d.want.IsZero() && !time.Now().Before(d.want) {
		return time.Time{}, false
	}
	d.socket = d.want
	return d.want, true
}

// timedOut says whether err is a deadline's.
func timedOut(err error) bool {
	return err != nil && errors.Is(err, os.ErrDeadlineExceeded)
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	for {
		// A read the deadline ends has read nothing (internal/poll).
		n, err := c.Conn.Read(b)
		if n > 0 || !timedOut(err) || !c.resume(&c.read, true) {
			return n, err
		}
	}
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	written := 0
	for {
		// A write the deadline ends may have written part of b.
		n, err := c.Conn.Write(b[written:])
		written += n
		if !timedOut(err) || !c.resume(&c.write, false) {
			return written, err
		}
	}
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error { return c.set(&c.read, t, true) }

func (c *deadlineConn) SetWriteDeadline(t time.Time) error { return c.set(&c.write, t, false) }

func (c *deadlineConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// set sets d, the read or the write deadline, to t. The lock is held
// while the socket's deadline is set, so that two calls put theirs there
// in the order they noted them.
func (c *deadlineConn) set(d *lazyDeadline, t time.Time, read bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.note(t) {
		return nil
	}
	return c.apply(t, read)
}

// resume reports whether a call the socket's deadline ended goes on under
// d, the read or the write deadline set since, which it puts on the
// socket.
func (c *deadlineConn) resume(d *lazyDeadline, read bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.due()
	return ok && c.apply(t, read) == nil
}

// apply puts t on the socket as its read or write deadline.
func (c *deadlineConn) apply(t time.Time, read bool) error {
	if read {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

// deadlineListener accepts connections with lazy deadlines.
type deadlineListener struct{ net.Listener }

func (l deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newDeadlineConn(c), nil
}
