package loopedge

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/apiwarden/apiwarden/api/gateway"
)

const (
	// minRead is the least free room a read into a connection's own
	// buffer is given (buffers.go).
	minRead = 16 << 10
	// maxBuffered is how much a pair holds in one direction before it
	// stops reading that direction's sender.
	maxBuffered = 1 << 20
)

// endpoint is one socket of a pair with what was read from it and not yet
// handled, and what is to be written to it.
type endpoint struct {
	fd      int // -1 once closed
	in, out []byte
	events  uint32 // the epoll interest registered for fd
}

// pair is a client connection and, while a request of its is in flight,
// the upstream connection that carries it (pool.go), both owned by one
// loop. At most one request is in flight: a pipelined request waits in
// client.in until the answer before it is relayed whole.
type pair struct {
	client     endpoint
	upstream   endpoint // fd -1 while none is held; out holds a request waiting for a slot
	peer       netip.Addr
	connecting bool // the upstream's non-blocking connect is pending
	waiting    bool // the request in flight waits for a slot (pool.go)
	slot       bool // the request in flight holds a slot of max_conns_per_host
	closing    bool // close the pair once client.out is written
	handing    bool // hand the client to the fasthttp edge once client.out is written
	closed     bool
	deciding   bool // its request's decision is out, off the loop (async.go)
	// since is when the pair last went idle or had a request decided;
	// headFrom when the current head's first byte came (deadline.go).
	since, headFrom time.Time
	fresh           bool // no request yet: the first head is awaited from the accept on
	// deadlines are p's places in the loop's lists of deadlines, a kind
	// each (deadline.go).
	deadlines [phases]deadlineLink
	// discard is how much of a refused request's body is still to come
	// and be dropped.
	discard int64
	ex      exchange
}

// exchange is the request in flight on a pair, from its decision to its
// record.
type exchange struct {
	busy bool // a request was forwarded; its answer is not relayed whole
	// head is the request's head, copied out of client.in: the request's
	// and in's strings are views of it until the call ends.
	head     []byte
	req      requestHead
	in       gateway.ProxyInbound
	call     *gateway.ProxyCall
	resp     gateway.Fields // the answer's own headers (DecideProxy's resp)
	bodyLeft int64          // request body bytes still to forward
	sent     time.Time      // when the request was queued upstream
	took     time.Duration
	answer   answerHead
	headDone bool  // the answer's head was relayed
	left     int64 // answer body bytes still to relay (of a chunked answer: of its chunk)
	chunks   chunkState
	// request is the upstream request of a replayable one (no body,
	// gateway.Replayable), for replay.
	request              []byte
	replayable, replayed bool
	bytes                int64 // answer body bytes relayed
	cache                string
}

// loop is one event loop: its own epoll set polling the shared listener,
// its wake fd, its pairs' sockets and its pool of idle upstream
// connections. Only its goroutine touches it, but for wake, notify and
// granted.
type loop struct {
	s                      *Server
	gw                     *gateway.Gateway
	log                    *slog.Logger
	epfd, listenFD, wakeFD int
	pairs                  []*pair // by fd, for both of a pair's sockets
	open                   int     // pairs open
	clients                int     // client connections the loop took to serve (balance.go)
	up                     gateway.Fields
	upstream               unix.Sockaddr // the loop's own copy
	domain                 int
	now                    time.Time // read once an event batch
	date                   []byte    // the Date value of now's second
	deadlines              [phases]deadlineList
	unlisten               func() // called once the loop left the listener
	dateSec                int64
	idle                   []idleConn // the pool, newest last (pool.go)
	pooled                 []bool     // by fd: in idle
	waiters                []*pair    // requests waiting for a slot, oldest first
	granted                []int      // slots granted to waiters, with their connections: under s.slots.mu
	grantBuf               []int
	scratch                []byte   // what a read fills (buffers.go)
	free                   [][]byte // write buffers to lend
	draining, stopNow      atomic.Bool
	decisions              completions // the decisions made off the loop (async.go)
	hasGrant               atomic.Bool // granted is not empty
	inbox                  inbox       // connections other loops accepted for this one (balance.go)
	queued                 []accepted  // the inbox's, taken out
}

// wake tells the loop to drain (stop accepting, finish the answers in
// flight, close idle pairs) or to stop at once. Safe for concurrent use.
func (l *loop) wake(drain bool) {
	if drain {
		l.draining.Store(true)
	} else {
		l.stopNow.Store(true)
	}
	l.notify()
}

// notify wakes the loop. Safe for concurrent use.
func (l *loop) notify() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(l.wakeFD, one[:])
}

// run serves until told to stop, or until a drain leaves no pair open,
// on a thread of its own; it then closes every pair.
func (l *loop) run() {
	runtime.LockOSThread()
	defer l.closeInbox()
	defer l.awaitDecisions()
	defer l.closeAll()
	defer l.leaveListener()
	events := make([]unix.EpollEvent, 256)
	l.scratch = make([]byte, 0, scratchSize)
	for {
		n, err := l.wait(events)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.log.Error("loopedge: epoll_wait", "err", err)
			return
		}
		l.now = time.Now()
		for _, ev := range events[:n] {
			switch fd := int(ev.Fd); fd {
			case l.listenFD:
				l.accept()
			case l.wakeFD:
				var b [8]byte
				_, _ = unix.Read(l.wakeFD, b[:])
				l.completed()
				l.startDrain()
				l.serveQueued()
			default:
				// A pair closed earlier in this batch leaves a nil here;
				// an idle upstream connection has none; the listener left
				// earlier in it (a drain) may be past the end.
				if p := l.pairOf(fd); p != nil {
					l.handle(p, fd, ev.Events)
				} else {
					l.idleEvent(fd)
				}
			}
		}
		l.serveGrants()
		l.scan()
		if l.stopNow.Load() || l.draining.Load() && l.open == 0 {
			return
		}
	}
}

// wait returns the ready events. Under load some are always ready, and a
// poll that cannot block finds them without the scheduler's hand-off of a
// blocking system call (syscalls.go); it blocks only when none are and
// no slot was granted to the loop (pool.go).
func (l *loop) wait(events []unix.EpollEvent) (int, error) {
	if n, err := pollNow(l.epfd, events); n > 0 || err != nil || l.hasGrant.Load() {
		return n, err
	}
	return unix.EpollWait(l.epfd, events, l.waitTimeout(time.Now()))
}

// startDrain stops accepting and closes the pairs with nothing in flight
// and the idle upstream connections.
func (l *loop) startDrain() {
	if !l.draining.Load() || l.listenFD < 0 {
		return
	}
	l.leaveListener()
	l.closeIdle()
	for _, p := range l.pairs {
		if p != nil && !p.ex.busy && !p.deciding && len(p.client.out) == 0 {
			l.closePair(p)
		}
	}
}

// leaveListener takes the listener out of the loop's epoll set, once.
func (l *loop) leaveListener() {
	if l.listenFD < 0 {
		return
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.listenFD, nil)
	l.listenFD = -1
	l.unlisten()
}

// accept takes one pending connection, so that the loops polling the
// listener share new connections, and has the loop whose turn it is
// serve it (balance.go).
func (l *loop) accept() {
	cfd, sa, err := unix.Accept4(l.listenFD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	switch err {
	case nil:
	case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
		return
	default:
		l.log.Error("loopedge: accept", "err", err)
		return
	}
	l.place(cfd, peerAddr(sa))
}

// serveClient serves the accepted connection cfd from peer on the loop.
func (l *loop) serveClient(cfd int, peer netip.Addr) {
	_ = unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	p := &pair{client: endpoint{fd: cfd, events: unix.EPOLLIN}, upstream: endpoint{fd: -1}, peer: peer}
	p.since, p.headFrom, p.fresh = l.now, l.now, true
	l.put(p, cfd)
	l.open++
	l.clients++
	if err := l.add(&p.client); err != nil {
		l.closePair(p)
		return
	}
	l.arm(p)
}

// dial starts an upstream connection for the pair's request; a connect
// that fails at once leaves the pair without one, and its request is
// answered 502.
func (l *loop) dial(p *pair) {
	fd, err := unix.Socket(l.domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.log.Warn("loopedge: upstream socket", "err", err)
		return
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	switch err = unix.Connect(fd, l.upstream); err {
	case nil, unix.EINPROGRESS:
	default:
		_ = unix.Close(fd)
		return
	}
	p.upstream = endpoint{fd: fd, events: unix.EPOLLIN | unix.EPOLLOUT, in: p.upstream.in[:0], out: p.upstream.out}
	p.connecting = true
	l.put(p, fd)
	if l.add(&p.upstream) != nil {
		l.upstreamGone(p, errUpstreamClosed)
	}
}

// handle reads what an event says is readable, finishes a pending
// connect, and moves the pair on, with buffers lent for the while
// (buffers.go). A panic of the request's handling closes the pair, as
// net/http closes a connection whose handler panicked.
func (l *loop) handle(p *pair, fd int, events uint32) {
	defer func() {
		if v := recover(); v != nil {
			l.log.Error("loopedge: panic serving a proxied request", "panic", v)
			l.closePair(p)
		}
		l.settle(p)
	}()
	l.lend(p)
	readable := events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0
	if fd == p.client.fd {
		wasEmpty := len(p.client.in) == 0
		if readable && !l.read(&p.client) {
			l.closePair(p)
			return
		}
		if wasEmpty && !p.ex.busy && !p.fresh {
			p.headFrom = l.now // a head's first byte: read_header_timeout from here
		}
		l.step(p)
		return
	}
	if p.connecting && events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil || soErr != 0 {
			l.upstreamGone(p, errUpstreamRefused)
			l.step(p)
			return
		}
		p.connecting = false
	}
	if readable && !l.read(&p.upstream) {
		l.upstreamGone(p, errUpstreamClosed)
	}
	l.step(p)
}

// step moves requests and answers as far as the buffers allow, writes what
// is pending, and closes the pair or updates its epoll interest.
func (l *loop) step(p *pair) {
	l.progress(p)
	if !p.connecting && p.upstream.fd >= 0 && !write(&p.upstream) {
		l.upstreamGone(p, errUpstreamClosed)
		l.progress(p)
	}
	if !write(&p.client) {
		l.closePair(p)
		return
	}
	if p.handing && len(p.client.out) == 0 && !p.ex.busy {
		l.giveAway(p)
		return
	}
	if (p.closing && len(p.client.out) == 0) ||
		(l.draining.Load() && !p.ex.busy && !p.deciding && len(p.client.out) == 0) {
		l.closePair(p)
		return
	}
	var clientWant, upstreamWant uint32
	if !p.closing && !p.handing && len(p.client.in)+len(p.upstream.out) < maxBuffered {
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
		return
	}
	l.arm(p)
}

// upstreamGone closes the upstream socket after an error or its EOF. A
// request in flight whose answer has not started is answered by the
// gateway (502); one whose answer has started is cut, the client's
// connection closed, but for an answer the close ends (endByClose).
func (l *loop) upstreamGone(p *pair, cause error) {
	stale := cause == errUpstreamClosed && len(p.upstream.in) == 0 && !p.ex.headDone
	ended := cause == errUpstreamClosed && l.endByClose(p)
	if p.upstream.fd >= 0 {
		l.pairs[p.upstream.fd] = nil
		_ = unix.Close(p.upstream.fd)
		p.upstream.fd = -1
	}
	p.connecting = false
	p.upstream.out = p.upstream.out[:0]
	p.upstream.in = p.upstream.in[:0]
	if ended {
		l.finish(p)
		return
	}
	if p.ex.busy && !(stale && l.replay(p)) {
		l.fail(p, cause)
	}
}

// replay sends the request in flight once more on a new upstream
// connection, when the one it went out on closed before any answer byte
// (most often: the upstream closed it as idle while the request was on
// its way) and the request may be sent twice (gateway.Replayable), as
// api/fastedge's client and the net/http proxy do: false when it may not
// or was already.
func (l *loop) replay(p *pair) bool {
	ex := &p.ex
	if ex.replayed || !ex.replayable {
		return false
	}
	l.dial(p)
	if p.upstream.fd < 0 {
		return false
	}
	ex.replayed = true
	p.upstream.out = append(p.upstream.out, ex.request...)
	return true
}

// write writes what out holds, as much as the socket takes; false on error.
func write(ep *endpoint) bool {
	if len(ep.out) == 0 || ep.fd < 0 {
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

// moveBody moves up to *left bytes from the start of from to the end of
// to, and returns how many.
func moveBody(from, to *[]byte, left *int64) int64 {
	n := min(*left, int64(len(*from)))
	if n == 0 {
		return 0
	}
	*to = append(*to, (*from)[:n]...)
	consume(from, int(n))
	*left -= n
	return n
}

// consume drops the first n bytes of buf, keeping its array.
func consume(buf *[]byte, n int) {
	rest := copy(*buf, (*buf)[n:])
	*buf = (*buf)[:rest]
}

// pairOf is the pair fd belongs to, nil for none.
func (l *loop) pairOf(fd int) *pair {
	if fd < 0 || fd >= len(l.pairs) {
		return nil
	}
	return l.pairs[fd]
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

// closePair closes both sockets of p; a request in flight is recorded as
// the client left it (abandon).
func (l *loop) closePair(p *pair) {
	if p.closed {
		return
	}
	p.closed = true
	l.disarm(p)
	if p.ex.busy {
		l.abandon(p)
	}
	for _, ep := range []*endpoint{&p.client, &p.upstream} {
		if ep.fd >= 0 {
			l.pairs[ep.fd] = nil
			_ = unix.Close(ep.fd)
			ep.fd = -1
		}
	}
	l.open--
}

// closeAll closes every pair and idle upstream connection, when the loop
// ends.
func (l *loop) closeAll() {
	for _, p := range l.pairs {
		if p != nil {
			l.closePair(p)
		}
	}
	l.closeIdle()
	l.endGrants()
}

// closeFDs closes the loop's epoll set and wake fd (not the listener,
// which is the server's).
func (l *loop) closeFDs() {
	for _, fd := range []int{l.epfd, l.wakeFD} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

// peerAddr is the IP of an accepted connection's peer.
func peerAddr(sa unix.Sockaddr) netip.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}
