package loopedge

import (
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// giveAway hands the pair's client connection to the fasthttp edge, the
// bytes the loop read of it and did not serve put in front, and closes
// the pair's upstream connection: from then on the connection is
// fasthttp's (and net/http's, for what fasthttp hands on), served on a
// goroutine of its own.
func (l *loop) giveAway(p *pair) {
	fd := p.client.fd
	// Out of the loop's epoll set first: the socket lives on in the dup
	// net.FileConn makes, and a registration outlives a closed fd number.
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.pairs[fd] = nil
	p.client.fd = -1
	f := os.NewFile(uintptr(fd), "client")
	c, err := net.FileConn(f)
	f.Close()
	l.closePair(p)
	if err != nil {
		l.log.Warn("loopedge: hand-off", "err", err)
		return
	}
	hc := &handedConn{Conn: c, prefix: append([]byte(nil), p.client.in...)}
	p.client.in = nil
	go func() { _ = l.s.fast.ServeConn(hc) }()
}

// handedConn is a client connection handed to the fasthttp edge: its
// reads return the bytes the loop had read first. Safe for concurrent
// use, as a net.Conn is.
type handedConn struct {
	net.Conn
	mu     sync.Mutex
	prefix []byte
}

func (c *handedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}
