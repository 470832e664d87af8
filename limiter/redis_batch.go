package limiter

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shape of the batcher.
const (
	// redisLanes is how many round trips may be in flight at once. A
	// subject always uses the same lane, so its scripts reach Redis in
	// the order its requests arrived.
	redisLanes = 4
	// defaultMaxRedisBatch caps the scripts sent in one pipeline, so one
	// slow reply does not hold hundreds of requests.
	defaultMaxRedisBatch = 128
)

// scriptCall is one allowScript call waiting for its answer.
type scriptCall struct {
	in       scriptInput
	deadline time.Time // the caller's: its arrival plus the timeout

	vals [scriptReply]int64 // the reply, when err is nil
	err  error

	// sends, when set before done fires, makes this call's caller the
	// sender of the next batch, of which it is the first: the queue's
	// head.
	sends bool
	done  chan struct{} // fires once: answered, or a batch to send
}

// lane queues the calls that arrive while one of its round trips is in
// flight.
type lane struct {
	mu      sync.Mutex
	sending bool          // a round trip is in flight, or its calls are being woken
	queue   []*scriptCall // in arrival order
	// inFlight is how many calls the lane's sender took for its batch: 0
	// while the caller that found the lane idle yields before taking.
	inFlight int

	// Reused from batch to batch, they belong to the lane's one sender
	// (the caller that set sending, or the one handed the next batch)
	// until it lets the lane go: batch holds the calls it sends, taken
	// under mu; the others are scratch for the round trip.
	batch []*scriptCall
	order []*scriptCall
	keys  []string
	argv  []any
	cmd   []any
}

// scriptBatcher sends allowScript calls to Redis, coalescing the calls
// that arrive while a round trip is in flight into one batch, as
// gubernator batches the requests it forwards to a peer. There is no
// timer and no wait: a call that finds its lane idle yields once to the
// goroutines ready to run and is sent with the calls that queued
// meanwhile, alone when none did, so a lone request pays one round trip,
// as without batching.
//
// A batch goes to a single server as one allowScript call with every
// decision, to a cluster or a ring as a pipeline of allowScript calls of
// one decision each. Either way each decision is atomic, and a batch
// saves the round trips and system calls of the calls in it (one call
// also saves Redis each script call's own set-up, and the reads and
// writes of a key that several of its decisions share). One round trip per lane at a time, one lane
// per subject, and calls queued and sent in arrival order: a subject's
// decisions run in the order its requests arrived.
//
// The batcher has no goroutine of its own. The caller that finds its lane
// idle yields once, then sends; when its round trip ends it wakes its batch's callers, then
// the oldest waiting caller, which yields once to the goroutines ready to
// run (on a busy host, requests about to join the queue), then takes the
// queue as its batch and sends it, and so on. A caller thus waits for at
// most the round trip in flight, its wake-ups, one turn of the scheduler
// and its own round trip.
type scriptBatcher struct {
	client   redis.UniversalClient
	prefix   string // of every key
	oneCall  bool   // batches go as one allowScript call, not a pipeline
	seed     maphash.Seed
	maxBatch int
	lanes    [redisLanes]lane
	calls    sync.Pool // of *scriptCall

	roundTrips atomic.Uint64
}

func newScriptBatcher(client redis.UniversalClient, prefix string) *scriptBatcher {
	// A cluster or a ring spreads keys over servers: one script call can
	// only hold keys of one server, so those get pipelines, which go-redis
	// splits per server.
	_, oneServer := client.(*redis.Client)
	b := &scriptBatcher{client: client, prefix: prefix, oneCall: oneServer, seed: maphash.MakeSeed(), maxBatch: defaultMaxRedisBatch}
	b.calls.New = func() any { return &scriptCall{done: make(chan struct{}, 1)} }
	return b
}

// run runs allowScript with in for subject, in a batch with other
// callers' calls when a round trip of subject's lane is in flight, and
// returns the reply. It gives up at deadline. It is safe for concurrent
// use and blocks until the reply or the error is known.
func (b *scriptBatcher) run(subject Subject, in *scriptInput, deadline time.Time) ([scriptReply]int64, error) {
	c := b.calls.Get().(*scriptCall)
	c.in, c.deadline = *in, deadline
	l := b.lane(subject)
	l.mu.Lock()
	if l.sending {
		l.queue = append(l.queue, c)
		l.mu.Unlock()
		<-c.done
		if c.sends {
			// Let the goroutines that are ready run first: on a busy
			// host they are requests on their way here, which then join
			// this batch rather than wait for the next round trip. With
			// none ready, Gosched returns at once.
			runtime.Gosched()
			b.send(l, b.take(l))
		}
	} else {
		l.sending = true
		l.mu.Unlock()
		// The same yield as a woken sender's: on a busy host the callers
		// the last batch woke, and requests on their way here, run first
		// and join this call's batch, rather than this call going alone
		// and them in the next (under the proxy benchmark every other
		// round trip carried one decision; docs/BENCHMARKS.md "Redis
		// mode's cost a request, second pass"). With none ready, Gosched
		// returns at once.
		runtime.Gosched()
		b.send(l, b.takeAfter(l, c))
	}
	vals, err := c.vals, c.err
	*c = scriptCall{done: c.done}
	b.calls.Put(c)
	return vals, err
}

// lane returns subject's lane, always the same one.
func (b *scriptBatcher) lane(subject Subject) *lane {
	return &b.lanes[maphash.String(b.seed, string(subject))%redisLanes]
}

// send does batch's round trip, wakes every call of batch but the first,
// whose caller is the one sending, and only then lets the lane go: to the
// first of the calls queued meanwhile, woken to send the next batch, or to
// whichever caller comes next. Until then the lane's batch slice is this
// sender's: letting the lane go before the last wake-up would let a
// caller it woke come back and start the batches that take that slice
// again, while this sender still reads it for the calls to wake.
func (b *scriptBatcher) send(l *lane, batch []*scriptCall) {
	b.roundTrip(l, batch)
	for _, c := range batch[1:] {
		c.done <- struct{}{}
	}

	l.mu.Lock()
	l.inFlight = 0
	var next *scriptCall
	if len(l.queue) > 0 {
		next = l.queue[0]
		next.sends = true
	} else {
		l.sending = false
	}
	l.mu.Unlock()
	// Woken last, the next sender is the goroutine this P runs next (the
	// scheduler's runnext slot), not one queued behind this batch's callers.
	if next != nil {
		next.done <- struct{}{}
	}
}

// take takes the next batch off l's queue: its oldest calls, at most
// maxBatch, in l's batch slice. It is for the caller whose call sends, at
// the queue's head, once the sender before it has let the lane go.
func (b *scriptBatcher) take(l *lane) []*scriptCall {
	return b.takeAfter(l, nil)
}

// takeAfter is take with head, when not nil, first in the batch: the
// call of the caller that found l idle, which was not queued.
func (b *scriptBatcher) takeAfter(l *lane, head *scriptCall) []*scriptCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batch = l.batch[:0]
	if head != nil {
		l.batch = append(l.batch, head)
	}
	n := min(len(l.queue), b.maxBatch-len(l.batch))
	l.batch = append(l.batch, l.queue[:n]...)
	left := copy(l.queue, l.queue[n:])
	clear(l.queue[left:])
	l.queue = l.queue[:left]
	l.inFlight = len(l.batch)
	return l.batch
}

// roundTrip runs every call of batch and sets its vals or err: one
// allowScript call of them all (or of one, alone), or one pipeline, which
// gives up at the earliest deadline in it. In a pipeline a call whose
// reply is lost fails alone: the replies read before stay good. l is the
// batch's lane, whose scratch slices the call uses.
func (b *scriptBatcher) roundTrip(l *lane, batch []*scriptCall) {
	deadline := batch[0].deadline
	for _, c := range batch[1:] {
		if c.deadline.Before(deadline) {
			deadline = c.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if b.oneCall || len(batch) == 1 {
		b.callBatch(ctx, l, batch)
		return
	}
	cmds := b.pipeline(ctx, batch)
	var unknown []*scriptCall // NOSCRIPT: Redis lost its script cache (a restart, SCRIPT FLUSH)
	for i, c := range batch {
		c.setReply(cmds[i].Int64Slice())
		if c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			unknown = append(unknown, c)
		}
	}
	if len(unknown) == 0 {
		return
	}
	// Those scripts did not run; load it (on every node of a cluster) and
	// send them again, still in arrival order among themselves.
	if err := allowScript.Load(ctx, b.client).Err(); err != nil {
		for _, c := range unknown {
			c.err = err
		}
		return
	}
	for i, cmd := range b.pipeline(ctx, unknown) {
		unknown[i].setReply(cmd.Int64Slice())
	}
}

// callBatch makes batch's decisions in one allowScript call. Its
// reply, or its error, is every call's.
//
// The calls go sorted by subject, each subject's in arrival order, and
// the calls of a subject with equal inputs that follow each other go as
// one group. Decisions of different subjects touch different keys, so
// their order within the call changes nothing.
func (b *scriptBatcher) callBatch(ctx context.Context, l *lane, batch []*scriptCall) {
	b.roundTrips.Add(1)
	order := append(l.order[:0], batch...)
	l.order = order
	slices.SortStableFunc(order, func(x, y *scriptCall) int { return strings.Compare(string(x.in.subject), string(y.in.subject)) })
	keys, argv := l.keys[:0], l.argv[:0]
	for i := 0; i < len(order); {
		n := groupLen(order[i:])
		keys, argv = order[i].in.appendGroup(b.prefix, keys, argv, n)
		i += n
	}
	cmd := append(l.cmd[:0], nil, nil, len(keys)) // eval sets the first two
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, argv...)
	vals, err := b.eval(ctx, cmd)
	clear(keys)
	clear(cmd)
	clear(argv)
	l.keys, l.argv, l.cmd = keys, argv, cmd
	if err == nil {
		err = spread(order, vals)
	}
	for _, c := range order {
		c.err = err
	}
	clear(order)
}

// eval runs allowScript with cmd, whose first two elements it sets:
// EVALSHA, or EVAL with the source when Redis does not know the script
// (a restart, SCRIPT FLUSH), as redis.Script.Run does. It returns the
// reply's integers, read straight into one []int64: a generic reply
// would box every value of 256 or more (the buckets' full-at times) in
// an interface, two allocations a decision.
func (b *scriptBatcher) eval(ctx context.Context, cmd []any) ([]int64, error) {
	cmd[0], cmd[1] = "evalsha", allowScript.Hash()
	c := redis.NewIntSliceCmd(ctx, cmd...)
	if err := b.client.Process(ctx, c); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd[0], cmd[1] = "eval", allowScriptSource
		c = redis.NewIntSliceCmd(ctx, cmd...)
		_ = b.client.Process(ctx, c)
	}
	return c.Result()
}

// setReply sets c's reply: vals, one decision's, or err.
func (c *scriptCall) setReply(vals []int64, err error) {
	if err == nil && len(vals) != scriptReply {
		err = fmt.Errorf("unexpected reply %v", vals)
	}
	if c.err = err; err == nil {
		c.vals = [scriptReply]int64(vals)
	}
}

// pipeline sends batch's calls as EVALSHAs in one pipeline and returns
// their commands, each with its own reply or error.
func (b *scriptBatcher) pipeline(ctx context.Context, batch []*scriptCall) []*redis.Cmd {
	b.roundTrips.Add(1)
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		keys, args := c.in.appendGroup(b.prefix, nil, nil, 1)
		cmds[i] = allowScript.EvalSha(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx) // each command holds its own error
	return cmds
}
