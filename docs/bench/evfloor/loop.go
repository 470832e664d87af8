package main

import (
	"errors"
	"log/slog"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// minRead is the least free room a read is given.
	minRead = 16 << 10
	// maxBuffered is how much a pair holds in one direction before it stops
	// reading that direction's sender.
	maxBuffered = 1 << 20
)

// endpoint is one socket of a pair with what was read from it and not yet
// handled, and what is to be written to it.
type endpoint struct {
	fd      int // -1 once closed
	in, out []byte
	events  uint32 // the epoll interest registered for fd
}

// pair is a client connection and the upstream connection that serves it
// alone, both owned by one loop. At most one request is in flight: a
// pipelined request waits in client.in until the answer before it is
// relayed whole.
type pair struct {
	client, upstream endpoint
	peer             []byte // the client's IP, X-Forwarded-For
	connecting       bool   // the upstream's non-blocking connect is pending
	busy             bool   // a request is forwarded; its answer is not relayed whole
	req              request
	requestBodyLeft  int
	answerHeadDone   bool
	answerBodyLeft   int
	closeAfter       bool // the upstream asked to close after this answer
	closing          bool // close the pair once client.out is written
	idBuf            [32]byte
	id               []byte
}

// loop is one event loop: its own epoll set, its own SO_REUSEPORT
// listener, and the pairs it accepted. Only its goroutine touches it.
type loop struct {
	epfd, listenFD, wakeFD int
	upstream               unix.Sockaddr
	domain                 int
	pairs                  []*pair // by fd, for both of a pair's sockets
	nextID, idStep         uint64
	logger                 *slog.Logger
}

// run serves until the wake fd is written or epoll fails, on a thread of
// its own, then closes every pair, the listener and the epoll set.
func (l *loop) run() {
	runtime.LockOSThread()
	defer l.shutdown()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := l.wait(events)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.logger.Error("epoll_wait", "err", err)
			return
		}
		for _, ev := range events[:n] {
			switch fd := int(ev.Fd); fd {
			case l.listenFD:
				l.accept()
			case l.wakeFD:
				return
			default:
				// A pair closed earlier in this batch leaves a nil here.
				if p := l.pairs[fd]; p != nil {
					l.handle(p, fd, ev.Events)
				}
			}
		}
	}
}

// wait returns the ready events. Under load some are always ready, and a
// poll that cannot block finds them without the scheduler's hand-off of
// a blocking system call (syscalls.go); it blocks only when none are.
func (l *loop) wait(events []unix.EpollEvent) (int, error) {
	if n, err := pollNow(l.epfd, events); n > 0 || err != nil {
		return n, err
	}
	return unix.EpollWait(l.epfd, events, -1)
}

// accept takes every pending connection and pairs each with a new upstream
// connection.
func (l *loop) accept() {
	for {
		cfd, sa, err := unix.Accept4(l.listenFD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.EAGAIN:
			return
		case unix.ECONNABORTED, unix.EINTR:
			continue
		default:
			l.logger.Error("accept", "err", err)
			return
		}
		_ = unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		p := &pair{client: endpoint{fd: cfd, events: unix.EPOLLIN}, upstream: endpoint{fd: -1}, peer: peerIP(sa)}
		l.put(p, cfd)
		if err := l.add(&p.client); err != nil {
			l.closePair(p)
			continue
		}
		ufd, connecting, err := l.dialUpstream()
		if err != nil {
			// The pair stays without an upstream: its first request is answered 502.
			l.logger.Warn("upstream", "err", err)
			continue
		}
		p.upstream, p.connecting = endpoint{fd: ufd, events: unix.EPOLLIN}, connecting
		if connecting {
			p.upstream.events |= unix.EPOLLOUT
		}
		l.put(p, ufd)
		if err := l.add(&p.upstream); err != nil {
			l.closePair(p)
		}
	}
}

// dialUpstream starts a non-blocking connect to the upstream; connecting
// is true while it is pending.
func (l *loop) dialUpstream() (fd int, connecting bool, err error) {
	fd, err = unix.Socket(l.domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, false, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	switch err = unix.Connect(fd, l.upstream); err {
	case nil:
		return fd, false, nil
	case unix.EINPROGRESS:
		return fd, true, nil
	}
	_ = unix.Close(fd)
	return -1, false, err
}

// handle reads what an event says is readable, finishes a pending connect,
// and moves the pair on.
func (l *loop) handle(p *pair, fd int, events uint32) {
	readable := events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0
	if fd == p.client.fd {
		if readable && !read(&p.client) {
			l.closePair(p)
			return
		}
		l.step(p)
		return
	}
	if p.connecting && events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil || soErr != 0 {
			l.upstreamGone(p)
			l.step(p)
			return
		}
		p.connecting = false
	}
	if readable && !read(&p.upstream) {
		l.upstreamGone(p)
	}
	l.step(p)
}

// step moves requests and answers as far as the buffers allow, writes what
// is pending, and closes the pair or updates its epoll interest.
func (l *loop) step(p *pair) {
	if err := l.progress(p); err != nil {
		p.refuse(err)
	}
	if !p.connecting && p.upstream.fd >= 0 && !write(&p.upstream) {
		l.upstreamGone(p)
	}
	if !write(&p.client) || (p.closing && len(p.client.out) == 0) {
		l.closePair(p)
		return
	}
	var clientWant, upstreamWant uint32
	if !p.closing && len(p.client.in)+len(p.upstream.out) < maxBuffered {
		clientWant |= unix.EPOLLIN
	}
	if len(p.client.out) > 0 {
		clientWant |= unix.EPOLLOUT
	}
	if len(p.upstream.in)+len(p.client.out) < maxBuffered {
		upstreamWant |= unix.EPOLLIN
	}
	if p.connecting || len(p.upstream.out) > 0 {
		upstreamWant |= unix.EPOLLOUT
	}
	if l.watch(&p.client, clientWant) != nil || l.watch(&p.upstream, upstreamWant) != nil {
		l.closePair(p)
	}
}

// progress forwards the client's next request once its head is whole and
// relays the upstream's answer as it comes, one request at a time.
func (l *loop) progress(p *pair) error {
	for {
		if !p.busy {
			if len(p.upstream.in) > 0 {
				return errBadGateway // an answer nobody asked for
			}
			if p.closing || len(p.client.in) == 0 {
				return nil
			}
			if err := l.forwardHead(p); err != nil || !p.busy {
				return err
			}
			if p.upstream.fd < 0 {
				return errBadGateway
			}
		}
		moveBody(&p.client.in, &p.upstream.out, &p.requestBodyLeft)
		if !p.answerHeadDone {
			if len(p.upstream.in) == 0 {
				return nil
			}
			mark := len(p.client.out)
			ans, out, err := rewriteAnswer(p.client.out, p.upstream.in, p.id, p.req.isHead, time.Now())
			if err != nil || ans.headLen == 0 {
				p.client.out = out[:mark]
				return err
			}
			p.client.out = out
			consume(&p.upstream.in, ans.headLen)
			if ans.interim {
				continue
			}
			p.answerHeadDone, p.answerBodyLeft, p.closeAfter = true, ans.bodyLen, ans.closeAfter
		}
		moveBody(&p.upstream.in, &p.client.out, &p.answerBodyLeft)
		if p.answerBodyLeft > 0 {
			return nil
		}
		p.busy = false
		// An answer before the whole request body leaves the upstream
		// connection mid-request: it cannot serve another.
		if p.requestBodyLeft > 0 || p.req.closeAfter || p.closeAfter {
			p.closing = true
			return nil
		}
	}
}

// forwardHead rewrites the request head at the start of client.in into
// upstream.out and marks the pair busy, or leaves both as they were while
// the head is incomplete.
func (l *loop) forwardHead(p *pair) error {
	p.id = appendRequestID(p.idBuf[:0], l.nextID)
	mark := len(p.upstream.out)
	req, out, err := rewriteRequest(p.upstream.out, p.client.in, p.id, p.peer)
	if err != nil || req.headLen == 0 {
		p.upstream.out = out[:mark]
		return err
	}
	l.nextID += l.idStep
	p.upstream.out = out
	consume(&p.client.in, req.headLen)
	p.busy, p.req, p.requestBodyLeft, p.answerHeadDone = true, req, req.bodyLen, false
	return nil
}

// refuse answers err's status to the client, unless part of an answer is
// already on its way, and closes the pair once that is written.
func (p *pair) refuse(err error) {
	if p.closing {
		return // refused or closing already
	}
	p.closing = true
	if p.busy && p.answerHeadDone {
		return
	}
	switch {
	case errors.Is(err, errBadRequest):
		p.client.out = appendRefusal(p.client.out, "400 Bad Request")
	case errors.Is(err, errUnsupported):
		p.client.out = appendRefusal(p.client.out, "501 Not Implemented")
	default:
		p.client.out = appendRefusal(p.client.out, "502 Bad Gateway")
	}
}

func appendRefusal(out []byte, status string) []byte {
	out = append(out, "HTTP/1.1 "+status+"\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: "...)
	out = append(strconv.AppendInt(out, int64(len(status)+1), 10), "\r\n\r\n"...)
	return append(out, status+"\n"...)
}

// upstreamGone closes the upstream socket after an error or its EOF. The
// pair does not reconnect: the request in flight, or else the client's next
// one, is answered 502 (or cut, if its answer has started) and the pair
// closes once that is written.
func (l *loop) upstreamGone(p *pair) {
	if p.upstream.fd >= 0 {
		l.pairs[p.upstream.fd] = nil
		_ = unix.Close(p.upstream.fd)
		p.upstream.fd = -1
	}
	p.connecting = false
	p.upstream.out = p.upstream.out[:0]
	if p.busy {
		p.refuse(errBadGateway)
	}
}

// read reads what fd has into in; false when the peer closed or failed.
func read(ep *endpoint) bool {
	if cap(ep.in)-len(ep.in) < minRead {
		grown := make([]byte, len(ep.in), max(2*cap(ep.in), len(ep.in)+minRead))
		copy(grown, ep.in)
		ep.in = grown
	}
	n, err := readRaw(ep.fd, ep.in[len(ep.in):cap(ep.in)])
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil || n == 0 {
		return false
	}
	ep.in = ep.in[:len(ep.in)+n]
	return true
}

// write writes what out holds, as much as the socket takes; false on error.
func write(ep *endpoint) bool {
	if len(ep.out) == 0 {
		return true
	}
	n, err := writeRaw(ep.fd, ep.out)
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil {
		return false
	}
	consume(&ep.out, n)
	return true
}

// moveBody moves up to *left bytes from the start of from to the end of to.
func moveBody(from, to *[]byte, left *int) {
	n := min(*left, len(*from))
	if n == 0 {
		return
	}
	*to = append(*to, (*from)[:n]...)
	consume(from, n)
	*left -= n
}

// consume drops the first n bytes of buf, keeping its array.
func consume(buf *[]byte, n int) {
	rest := copy(*buf, (*buf)[n:])
	*buf = (*buf)[:rest]
}

func (l *loop) put(p *pair, fd int) {
	for fd >= len(l.pairs) {
		l.pairs = append(l.pairs, nil)
	}
	l.pairs[fd] = p
}

func (l *loop) add(ep *endpoint) error {
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, ep.fd, &unix.EpollEvent{Events: ep.events, Fd: int32(ep.fd)})
}

// watch sets fd's epoll interest to want when it differs from what is set.
func (l *loop) watch(ep *endpoint, want uint32) error {
	if ep.fd < 0 || ep.events == want {
		return nil
	}
	ep.events = want
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, ep.fd, &unix.EpollEvent{Events: want, Fd: int32(ep.fd)})
}

func (l *loop) closePair(p *pair) {
	for _, ep := range []*endpoint{&p.client, &p.upstream} {
		if ep.fd >= 0 {
			l.pairs[ep.fd] = nil
			_ = unix.Close(ep.fd)
			ep.fd = -1
		}
	}
}

func (l *loop) shutdown() {
	for _, p := range l.pairs {
		if p != nil {
			l.closePair(p)
		}
	}
	_ = unix.Close(l.listenFD)
	_ = unix.Close(l.epfd)
}
