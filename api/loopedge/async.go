package loopedge

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// A decision that may wait (gateway.Gateway.DecisionMayWait: limits
// shared through Redis) is made off the loop: the loop hands the pair's
// request to a goroutine of its own and serves its other connections
// meanwhile; the goroutine puts the finished decision on the loop's
// completion queue and wakes the loop through its wake fd, and the loop
// then answers or forwards the request as decide does on the loop.
//
// A goroutine a decision rather than a pool of a few: the Redis limiter
// batches the decisions that wait at the same time into one round trip
// (limiter/redis_batch.go), so every request in flight should be waiting
// there, not queued for a worker. A pool of 4 took 1.6x the CPU a
// request (three times redis-server's: smaller batches); one of 64 was
// within the noise of a goroutine each, with workers to start and stop
// (docs/BENCHMARKS.md, "The event-loop edge with Redis (thirteenth
// session)"). The loop does not start those goroutines itself: a
// goroutine started on a loop's thread waits for another P to steal it,
// so they reached the limiter one by one, in batches too small. The
// server's dispatcher, a goroutine on the Ps the loops leave, starts
// them, where they run together: 0.89x the CPU a request
// (redis-server's 0.79x).
//
// While its decision is out, the loop touches nothing of the request
// (p.ex: its head, whose views gateway.ProxyInbound's strings are, the
// answer's headers); it reads on into client.in, which the head was
// copied out of. A pair closed meanwhile (the client left, a deadline, a
// stop) is ended when its decision comes back: the call, if one was
// made, is recorded as abandoned, once. A loop ends only once every
// decision it handed out came back (awaitDecisions), so no goroutine
// wakes a closed fd.

// offDecision is a request decided off the loop: the pair it belongs to
// and DecideProxy's results, with the upstream's header list of its own
// (the loop's is for decisions on the loop).
type offDecision struct {
	l     *loop // the loop that handed it out, always the same
	p     *pair
	call  *gateway.ProxyCall
	a     gateway.Answer
	ok    bool
	panic any // what the decision panicked with, if it did
	up    gateway.Fields
}

// completions is a loop's queue of decisions made off it: ready and out
// are shared with the decisions' goroutines (decideAway), under mu and
// by the WaitGroup's own rules; the rest is the loop's.
type completions struct {
	mu    sync.Mutex
	ready []*offDecision // pushed, not yet taken by the loop
	taken []*offDecision // the loop's: the last batch taken, its array reused
	spare []*offDecision // the loop's: free for the next decision
	out   sync.WaitGroup // decisions handed out and not yet pushed
}

// decideOff hands the pair's request, whose head is whole and parsed,
// to a goroutine to be decided; the loop leaves the pair's request
// alone until it comes back (completed).
func (l *loop) decideOff(p *pair) {
	q := &l.decisions
	var d *offDecision
	if n := len(q.spare); n > 0 {
		d, q.spare = q.spare[n-1], q.spare[:n-1]
	} else {
		d = &offDecision{l: l}
	}
	d.p, p.deciding = p, true
	q.out.Add(1)
	select {
	case l.s.dispatch <- d:
	default: // the dispatcher is behind: the loop must not wait for it
		go l.decideAway(d)
	}
}

// dispatchSize is how many decisions the dispatcher may be behind
// before the loops start their goroutines themselves.
const dispatchSize = 1024

// dispatchDecisions starts a goroutine for each decision the loops hand
// out, until the channel closes (once the loops ended).
func dispatchDecisions(decisions <-chan *offDecision) {
	for d := range decisions {
		go d.l.decideAway(d)
	}
}

// decideAway decides d's request on a goroutine of its own, puts it on
// the loop's queue and wakes the loop when the queue was empty (a loop
// that takes a batch reads its wake fd first, so no push goes unseen).
func (l *loop) decideAway(d *offDecision) {
	q := &l.decisions
	defer q.out.Done()
	func() {
		defer func() { d.panic = recover() }()
		ex := &d.p.ex
		d.call, d.a, d.ok = l.gw.DecideProxy(&ex.resp, &d.up, &ex.in)
	}()
	q.mu.Lock()
	first := len(q.ready) == 0
	q.ready = append(q.ready, d)
	q.mu.Unlock()
	if first {
		l.notify()
	}
}

// completed takes the decisions that came back and moves their pairs on.
func (l *loop) completed() {
	q := &l.decisions
	q.mu.Lock()
	q.taken, q.ready = q.ready, q.taken[:0]
	q.mu.Unlock()
	for i, d := range q.taken {
		l.conclude(d)
		q.taken[i] = nil
	}
}

// conclude ends the wait of d's pair: an open pair's request is answered
// or forwarded (decided) and the pair moved on; a closed one's call is
// recorded as abandoned. d goes back to the spare ones. A panic, of the
// decision or here, closes the pair, as handle does.
func (l *loop) conclude(d *offDecision) {
	p := d.p
	p.deciding = false
	defer func() {
		if v := recover(); v != nil {
			l.log.Error("loopedge: panic serving a proxied request", "panic", v)
			l.closePair(p)
		}
	}()
	switch {
	case d.panic != nil:
		panic(d.panic)
	case p.closed:
		if d.call != nil {
			p.ex.call, p.ex.sent = d.call, time.Now()
			l.failed(p, context.Canceled)
		}
		p.ex.resp.Reset()
	case l.decided(p, d.call, d.a, d.ok, &d.up):
		consume(&p.client.in, len(p.ex.head))
		l.step(p)
	default:
		l.notLean(p, http.StatusBadRequest)
		l.step(p)
	}
	d.up.Reset()
	*d = offDecision{l: l, up: d.up}
	l.decisions.spare = append(l.decisions.spare, d)
}

// awaitDecisions waits for the decisions still out when the loop ends,
// their pairs closed by then, and records their calls.
func (l *loop) awaitDecisions() {
	l.decisions.out.Wait()
	l.completed()
}
