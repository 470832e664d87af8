package fastedge

import (
	"net"
	"sync"
)

// ServeConn serves one connection another edge accepted and hands over
// (api/loopedge: the requests its event loops do not serve), as Serve
// serves each of its listener's, until the connection closes; the proxy's
// requests it hands to net/http go to the server Serve runs, so Serve
// must be running (IdleListener gives it one that accepts nothing).
// Shutdown drains it and Close closes it with the others. Safe for
// concurrent use.
func (s *Server) ServeConn(c net.Conn) error {
	return s.srv.ServeConn(newDeadlineConn(c))
}

// IdleListener is a listener that accepts nothing until it is closed:
// Serve on it runs the server for ServeConn alone.
func IdleListener(addr net.Addr) net.Listener {
	return &idleListener{addr: addr, closed: make(chan struct{})}
}

type idleListener struct {
	addr   net.Addr
	once   sync.Once
	closed chan struct{}
}

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return l.addr }
