package main

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// Server is the floor's set of event loops, each with its own listener on
// one address (SO_REUSEPORT: the kernel spreads new connections over them).
type Server struct {
	addr  string
	loops []*loop
	wg    sync.WaitGroup
	once  sync.Once
}

// Start binds listen once per loop, connects every accepted connection to
// upstream (host:port) on the same loop, and runs loops loops, each on a
// locked thread. It returns once all listen; Close stops them.
func Start(listen, upstream string, loops int, logger *slog.Logger) (*Server, error) {
	upAddr, err := net.ResolveTCPAddr("tcp", upstream)
	if err != nil {
		return nil, fmt.Errorf("evfloor: -upstream %q: %w", upstream, err)
	}
	upSA, upDomain := sockaddr(upAddr)
	listenAddr, err := net.ResolveTCPAddr("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("evfloor: -listen %q: %w", listen, err)
	}
	s := &Server{}
	for i := range loops {
		l := &loop{upstream: upSA, domain: upDomain, nextID: uint64(i) + 1, idStep: uint64(loops), logger: logger}
		if err := l.open(listenAddr); err != nil {
			s.closeFDs()
			return nil, err
		}
		s.loops = append(s.loops, l)
		if listenAddr.Port == 0 {
			// The first listener picked a port; the others share it.
			bound, _ := unix.Getsockname(l.listenFD)
			switch sa := bound.(type) {
			case *unix.SockaddrInet4:
				listenAddr.Port = sa.Port
			case *unix.SockaddrInet6:
				listenAddr.Port = sa.Port
			}
		}
	}
	s.addr = listenAddr.String()
	for _, l := range s.loops {
		s.wg.Go(l.run)
	}
	return s, nil
}

// Addr is the address the loops listen on.
func (s *Server) Addr() string { return s.addr }

// Close stops every loop, which closes its connections and listener, and
// waits for them. It is safe to call more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		for _, l := range s.loops {
			_, _ = unix.Write(l.wakeFD, one[:])
		}
		s.wg.Wait()
		for _, l := range s.loops {
			_ = unix.Close(l.wakeFD)
		}
	})
	return nil
}

// closeFDs closes what open made for loops that never ran.
func (s *Server) closeFDs() {
	for _, l := range s.loops {
		l.shutdown()
		_ = unix.Close(l.wakeFD)
	}
}

// open makes the loop's epoll set, its listener on addr and its wake fd.
func (l *loop) open(addr *net.TCPAddr) (err error) {
	l.epfd, l.listenFD, l.wakeFD = -1, -1, -1
	defer func() {
		if err != nil {
			for _, fd := range []int{l.epfd, l.listenFD, l.wakeFD} {
				if fd >= 0 {
					_ = unix.Close(fd)
				}
			}
			err = fmt.Errorf("evfloor: listen on %s: %w", addr, err)
		}
	}()
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return err
	}
	sa, domain := sockaddr(addr)
	if l.listenFD, err = unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return err
	}
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err = unix.SetsockoptInt(l.listenFD, unix.SOL_SOCKET, opt, 1); err != nil {
			return err
		}
	}
	if err = unix.Bind(l.listenFD, sa); err != nil {
		return err
	}
	if err = unix.Listen(l.listenFD, 4096); err != nil {
		return err
	}
	if l.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return err
	}
	for _, fd := range []int{l.listenFD, l.wakeFD} {
		if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return err
		}
	}
	return nil
}

func sockaddr(a *net.TCPAddr) (unix.Sockaddr, int) {
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, unix.AF_INET6
}

// peerIP is the IP of an accepted connection's peer, as text.
func peerIP(sa unix.Sockaddr) []byte {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return []byte(net.IP(sa.Addr[:]).String())
	case *unix.SockaddrInet6:
		return []byte(net.IP(sa.Addr[:]).String())
	}
	return nil
}
