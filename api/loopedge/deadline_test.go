package loopedge

import (
	"log/slog"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDeadlinesFireInOrder steps a loop's clock by hand (loop.now) past
// the deadlines of pairs of two kinds set at different times: each pair
// is closed at the scan after its own deadline, not a scan period later
// (the loop once scanned every 100 ms), in the order the deadlines fall;
// a deadline moved on (a new request, then idle again) fires at its new
// time, not its old one; epoll_wait sleeps until the nearest.
func TestDeadlinesFireInOrder(t *testing.T) {
	ms := time.Millisecond
	l := &loop{s: &Server{timeouts: Timeouts{Idle: 10 * ms, ReadHeader: 20 * ms}}, log: slog.Default(), epfd: -1}
	t0 := time.Now()
	newPair := func(at time.Duration, fresh bool) *pair {
		l.now = t0.Add(at)
		return stepPair(t, l, fresh)
	}
	idleA := newPair(0, false)
	headB := newPair(1*ms, true)
	idleC := newPair(2*ms, false)
	movedD := newPair(3*ms, false)
	l.now = t0.Add(5 * ms)
	movedD.since = l.now // a request came and went: idle again from here
	l.step(movedD)
	// epoll_wait sleeps until idleA's deadline, the nearest, not a scan
	// period: 10 ms from t0, 5 ms from now.
	if got := l.waitTimeout(l.now); got != 5 {
		t.Errorf("epoll_wait's timeout %d ms, want 5", got)
	}

	for _, tc := range []struct {
		at     time.Duration
		closed []*pair
	}{
		{9 * ms, nil},
		{10*ms + 1, []*pair{idleA}},
		{12*ms + 1, []*pair{idleA, idleC}},
		{13*ms + 1, []*pair{idleA, idleC}}, // movedD's first deadline is stale
		{15*ms + 1, []*pair{idleA, idleC, movedD}},
		{21*ms + 1, []*pair{idleA, idleC, movedD, headB}},
	} {
		l.now = t0.Add(tc.at)
		l.scan()
		for _, p := range []*pair{idleA, headB, idleC, movedD} {
			want := false
			for _, c := range tc.closed {
				want = want || c == p
			}
			if p.closed != want {
				t.Fatalf("at %v: pair idle from %v closed %v, want %v", tc.at, p.since.Sub(t0), p.closed, want)
			}
		}
	}
	if l.open != 0 {
		t.Errorf("%d pairs open", l.open)
	}
	if got := l.waitTimeout(l.now); got != -1 {
		t.Errorf("epoll_wait's timeout %d ms with no deadline, want -1", got)
	}
}

// TestDeadlineOutOfOrderKeepsItsPlace: a pair that goes idle later than
// the time its idle_timeout counts from (its answer took long to write)
// is placed after the deadlines set before it, and stays there however
// often it steps on: it fires at the deadline it was given, not at a
// later one each step.
func TestDeadlineOutOfOrderKeepsItsPlace(t *testing.T) {
	ms := time.Millisecond
	l := &loop{s: &Server{timeouts: Timeouts{Idle: 10 * ms}}, log: slog.Default(), epfd: -1}
	t0 := time.Now()
	l.now = t0.Add(4 * ms)
	first := stepPair(t, l, false) // idle until 14 ms
	l.now = t0.Add(5 * ms)
	late := stepPair(t, l, false)
	late.ex.busy = true
	l.step(late) // an exchange: no idle deadline
	late.ex.busy, late.since = false, t0.Add(1*ms)
	l.step(late) // idle from 1 ms: 11 ms, kept at 14 ms
	for i := range 5 {
		l.now = t0.Add(time.Duration(6+i) * ms)
		stepPair(t, l, false) // idle until 16 ms and on
		l.step(late)
	}
	if late.closed || first.closed {
		t.Fatal("a pair closed before its deadline")
	}
	l.now = t0.Add(14*ms + 1)
	l.scan()
	if !first.closed || !late.closed {
		t.Fatalf("at 14 ms: the first pair closed %v, the late one %v; want both", first.closed, late.closed)
	}
}

// stepPair makes a pair on l, idle since l.now (fresh: awaiting its
// first head), its client socket an eventfd to close, and steps it.
func stepPair(t *testing.T, l *loop, fresh bool) *pair {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{client: endpoint{fd: fd, events: unix.EPOLLIN}, upstream: endpoint{fd: -1}, since: l.now, headFrom: l.now, fresh: fresh}
	l.put(p, fd)
	l.open++
	l.step(p)
	return p
}

// BenchmarkArm is the deadline bookkeeping of one proxied request on a
// loop of 1,000 keep-alive pairs: armed when it is forwarded (upstream
// and write deadlines), and again when its answer is relayed (idle).
func BenchmarkArm(b *testing.B) {
	l := &loop{s: &Server{timeouts: Timeouts{Idle: time.Minute, ReadHeader: time.Second, Write: time.Minute, ResponseHeader: 30 * time.Second}}}
	pairs := make([]pair, 1000)
	l.now = time.Now()
	for i := range pairs {
		pairs[i].since = l.now
		l.arm(&pairs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := &pairs[i%len(pairs)]
		l.now = l.now.Add(time.Microsecond)
		p.since, p.ex.sent, p.ex.busy, p.ex.headDone = l.now, l.now, true, false
		l.arm(p)
		p.ex.busy, p.since = false, l.now
		l.arm(p)
	}
	l.scan()
}
