package limiter

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiwarden/apiwarden/internal/redistest"
)

// pending is how many calls the batcher holds: those of the batches in
// flight, plus the queued ones.
func (b *scriptBatcher) pending() int {
	n := 0
	for i := range b.lanes {
		l := &b.lanes[i]
		l.mu.Lock()
		n += len(l.queue) + l.inFlight
		l.mu.Unlock()
	}
	return n
}

// forEachBatchMode runs test on a fresh redis-server and a Redis with
// opts whose script is loaded, with batches sent as one allowScript
// call (a single server) and as pipelines (a cluster or a ring).
func forEachBatchMode(t *testing.T, opts RedisOptions, test func(t *testing.T, srv *redistest.Server, r *Redis)) {
	for _, mode := range []struct {
		name    string
		oneCall bool
	}{{"one call", true}, {"pipeline", false}} {
		t.Run(mode.name, func(t *testing.T) {
			srv := redistest.Start(t)
			r := newTestRedis(t, srv, opts)
			r.batch.oneCall = mode.oneCall
			r.Allow(Request{Subject: "warm-up", Tier: "free"})
			test(t, srv, r)
		})
	}
}

// waitPending polls until the batcher holds n calls.
func waitPending(t *testing.T, r *Redis, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the batcher holding %d calls", n), func() bool { return r.batch.pending() == n })
}

// decideAll runs every request in its own goroutine and returns the
// results, in the order of reqs, once all have returned.
func decideAll(r *Redis, now time.Time, reqs []Request) []Result {
	return decideEach(r, now, reqs, func(int) {}, func() {})
}

// decideEach is decideAll calling started(i) once request i's goroutine
// is started, before starting the next, and then() once all are, before
// waiting for them.
func decideEach(r *Redis, now time.Time, reqs []Request, started func(i int), then func()) []Result {
	results := make([]Result, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.AllowAt(now, req)
		}()
		started(i)
	}
	then()
	wg.Wait()
	return results
}

// decidePaused pauses srv, starts the requests one at a time, each once
// the one before is held by the batcher, so they queue in the order of
// reqs (each lane's first alone in flight), calls then (which must let
// the round trips end: resume, kill, or nothing for a timeout) and
// returns the results once all have returned, in the order of reqs.
func decidePaused(t *testing.T, srv *redistest.Server, r *Redis, now time.Time, reqs []Request, then func()) []Result {
	t.Helper()
	srv.Pause()
	return decideEach(r, now, reqs, func(i int) { waitPending(t, r, i+1) }, then)
}

// decideQueued is decidePaused resuming srv.
func decideQueued(t *testing.T, srv *redistest.Server, r *Redis, now time.Time, reqs []Request) []Result {
	t.Helper()
	return decidePaused(t, srv, r, now, reqs, srv.Resume)
}

func repeat(req Request, n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = req
	}
	return reqs
}

func admitted(results []Result) int {
	n := 0
	for _, res := range results {
		if res.Allowed {
			n++
		}
	}
	return n
}

// limitedKind is a request and how many of many equal ones the test
// tiers admit: a burst, a monthly quota, a route's capacity.
type limitedKind struct {
	req  Request
	want int
}

func limitedKinds() []limitedKind {
	return []limitedKind{
		{Request{Subject: "burst", Tier: "free"}, 10},
		{Request{Subject: "quota", Tier: "metered"}, 5},
		{Request{Subject: "route", Tier: "basic", Route: "forms", RoutePerMinute: 4}, 4},
	}
}

// Every script of a batch runs atomically and in full: with many more
// callers than tokens, exactly the burst, the route's capacity and the
// monthly quota are admitted, whether the calls queued up behind a paused
// server (batches capped at 16) or just ran concurrently. The timeout is
// generous: nothing here may fall back under the race detector on a
// loaded machine.
func TestRedisBatchAdmitsExactly(t *testing.T) {
	forEachBatchMode(t, RedisOptions{Timeout: 10 * time.Second}, func(t *testing.T, srv *redistest.Server, r *Redis) {
		r.batch.maxBatch = 16
		now := time.Now()

		kinds := limitedKinds()
		const callers = 40
		var reqs []Request
		for _, k := range kinds {
			reqs = append(reqs, repeat(k.req, callers)...)
		}
		results := decidePaused(t, srv, r, now, reqs, srv.Resume)

		for j, k := range kinds {
			if got := admitted(results[j*callers : (j+1)*callers]); got != k.want {
				t.Errorf("%s: %d of %d admitted, want exactly %d", k.req.Subject, got, callers, k.want)
			}
		}
		st := r.Stats()
		if st.Fallbacks != 0 || st.Calls != uint64(len(reqs)+1) {
			t.Fatalf("stats %+v", st)
		}
		// At most one call alone per lane, the rest in batches of 16 at most.
		if st.RoundTrips >= st.Calls || st.RoundTrips < 1+uint64(len(reqs)-redisLanes)/16 {
			t.Errorf("%d scripts in %d round trips: not batched, or batches over the cap", st.Calls, st.RoundTrips)
		}

		// Unpaused: 256 callers at once against a burst of 50.
		results = decideAll(r, now, repeat(Request{Subject: "free-for-all", Tier: "basic"}, 256))
		if n := admitted(results); n != 50 || r.Stats().Fallbacks != 0 {
			t.Fatalf("%d of 256 admitted against a burst of 50 (%+v)", n, r.Stats())
		}
	})
}

// A subject's scripts run in the order its requests arrived: the calls
// queued one by one behind a paused server find the tokens in that order.
func TestRedisBatchKeepsArrivalOrder(t *testing.T) {
	forEachBatchMode(t, RedisOptions{Timeout: 10 * time.Second}, func(t *testing.T, srv *redistest.Server, r *Redis) {
		now := time.Now()
		req := Request{Subject: "ordered", Tier: "free"}

		const n = 12 // two more than the burst
		results := decideQueued(t, srv, r, now, repeat(req, n))
		for i, res := range results {
			b, _ := find(res, PolicyMinute)
			want := int64(max(9-i, -1)) // -1: denied
			got := b.Remaining
			if !res.Allowed {
				got = -1
			}
			if got != want {
				t.Errorf("request %d: %d tokens left (-1: denied), want %d", i, got, want)
			}
		}
		if st := r.Stats(); st.RoundTrips != 3 || st.Fallbacks != 0 {
			t.Errorf("want the warm-up, the first call and one batch of 11: %+v", st)
		}
	})
}

// When a batch's round trip times out, every caller in it gets the
// decision the single path gives: the local limiter's, counted as a
// fallback and a failure.
func TestRedisBatchTimeoutFallsBackForEach(t *testing.T) {
	forEachBatchMode(t, RedisOptions{Timeout: 3 * time.Second, FailureThreshold: 100}, func(t *testing.T, srv *redistest.Server, r *Redis) {
		now := time.Now()

		const n = 8
		results := decidePaused(t, srv, r, now, repeat(Request{Subject: "k", Tier: "tiny"}, n), func() {}) // the timeout ends the round trips
		srv.Resume()
		st := r.Stats()
		if got := admitted(results); got != 3 || st.Fallbacks != n || st.Failures != n || st.RoundTrips != 3 {
			t.Fatalf("%d admitted, want the local burst of 3; stats %+v, want %d fallbacks and failures in 3 round trips",
				got, st, n)
		}
		if !r.Healthy() {
			t.Fatal("8 failures opened a breaker whose threshold is 100")
		}
	})
}

// Redis killed while a batch waits for it: each caller falls back, the
// breaker opens; restarted, Redis decides again (the probe reloads the
// script the restart lost).
func TestRedisBatchKilledAndRestarted(t *testing.T) {
	forEachBatchMode(t, RedisOptions{Timeout: 10 * time.Second, FailureThreshold: 1, CoolDown: time.Minute}, func(t *testing.T, srv *redistest.Server, r *Redis) {
		now := time.Now()

		const n = 8
		results := decidePaused(t, srv, r, now, repeat(Request{Subject: "k", Tier: "tiny"}, n), srv.KillPaused)
		st := r.Stats()
		if got := admitted(results); got != 3 || st.Fallbacks != n || st.Breaker != "open" || st.RoundTrips != 3 {
			t.Fatalf("%d admitted, want the local burst of 3; stats %+v", got, st)
		}

		srv.Restart()
		later := now.Add(time.Minute)
		if res := r.AllowAt(later, Request{Subject: "k", Tier: "free"}); !res.Allowed || !r.Healthy() {
			t.Fatalf("the probe after the restart: %+v %+v", res, r.Stats())
		}
		// Batches go to Redis again: exactly the burst of the restarted
		// server's fresh bucket, no fallback.
		results = decideAll(r, later, repeat(Request{Subject: "k2", Tier: "free"}, 4*n))
		if got := admitted(results); got != 10 || r.Stats().Fallbacks != n {
			t.Fatalf("after the restart %d admitted, want 10; %+v", got, r.Stats())
		}
	})
}

// A batch sent after Redis lost its script cache loads the script and
// sends the decisions again; each runs once.
func TestRedisBatchReloadsAFlushedScript(t *testing.T) {
	forEachBatchMode(t, RedisOptions{Timeout: 10 * time.Second}, func(t *testing.T, srv *redistest.Server, r *Redis) {
		if err := redisClient(t, srv).ScriptFlush(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		in := routeOnlyInput("s", 4)
		batch := make([]*scriptCall, 6)
		for i := range batch {
			batch[i] = &scriptCall{in: in, deadline: time.Now().Add(10 * time.Second)}
		}
		before := r.Stats().RoundTrips
		r.batch.roundTrip(&r.batch.lanes[0], batch)
		for i, c := range batch {
			if c.err != nil || (c.vals[replyReason] == 0) != (i < 4) {
				t.Errorf("call %d: %v %v, want allowed %v", i, c.vals, c.err, i < 4)
			}
		}
		// A pipeline is sent again; one call is retried inside eval.
		if got, want := r.Stats().RoundTrips-before, map[bool]uint64{true: 1, false: 2}[r.batch.oneCall]; got != want {
			t.Errorf("%d round trips counted, want %d", got, want)
		}
	})
}

// A batch decides as its decisions would one at a time: a call reads each
// key once and writes it once at the end, and sends a subject's equal
// requests that follow each other as one group, so a subject seen many
// times in one batch (tier changes, route and monthly quota included, and
// other subjects' requests between) must get the
// answers the local limiter gives, whose arithmetic the script mirrors,
// deciding the same sequence one request at a time, each at the instant
// Redis decided it. Then one more call per subject reads what the batch
// wrote.
//
// The instants are Redis's own, read from the replies: a pipeline's
// decisions each read the clock, so on a loaded host they are apart, and
// a tier change turns such a gap into a larger one in the rescaled
// bucket (by the ratio of the two refill intervals: 20 s / 1.2 s from
// basic to tiny). Compared with one instant for all, the tiny request
// once came back with 19.93 s to wait against 20 s, beyond the time the
// test had run.
func TestRedisBatchDecidesAsOneByOne(t *testing.T) {
	forEachBatchMode(t, RedisOptions{Timeout: 10 * time.Second}, func(t *testing.T, srv *redistest.Server, r *Redis) {
		clock := &scriptClock{}
		r.client.AddHook(clock)
		one := newTestLimiter(t, Options{Now: time.Now})
		subjects := sameLane(r.batch, 6)
		a, b, c, d, e, f := subjects[0], subjects[1], subjects[2], subjects[3], subjects[4], subjects[5]
		var reqs []Request
		for i := range 12 { // a: the burst of 10 and two denied, interleaved with b's quota of 5 and route of 4
			reqs = append(reqs, Request{Subject: a, Tier: "free"},
				Request{Subject: b, Tier: "metered", Route: "forms", RoutePerMinute: 4, Cost: 1 + i%2})
		}
		reqs = append(reqs,
			Request{Subject: a, Tier: "basic"}, // a larger tier: rescaled, admitted
			Request{Subject: c, Route: "bulk", RoutePerMinute: 20, RouteOnly: true, Cost: 15},
			Request{Subject: a, Tier: "tiny"}, // a smaller one: clamped, denied
			Request{Subject: c, Route: "bulk", RoutePerMinute: 20, RouteOnly: true, Cost: 5},
			Request{Subject: a, Tier: "tiny", Cost: 6}, // over the capacity: never
			Request{Subject: c, Route: "bulk", RoutePerMinute: 20, RouteOnly: true},
			Request{Subject: b, Tier: "basic", Route: "forms", RoutePerMinute: 4},
		)
		// Groups whose admitted run ends on a route (4 of 8), on a
		// monthly quota (5 of 8) and on a burst at a cost of 3 (3 of 6).
		reqs = append(reqs, repeat(Request{Subject: d, Tier: "metered", Route: "forms", RoutePerMinute: 4}, 8)...)
		reqs = append(reqs, repeat(Request{Subject: e, Tier: "metered"}, 8)...)
		reqs = append(reqs, repeat(Request{Subject: f, Tier: "free", Cost: 3}, 6)...)
		now := time.Now()

		before := r.Stats().RoundTrips
		batched := decideQueued(t, srv, r, now, reqs)
		if st := r.Stats(); st.Fallbacks != 0 || (r.batch.oneCall && st.RoundTrips-before != 2) {
			t.Fatalf("want the first call alone and the rest in one batch, no fallback: %+v", st)
		}
		at := clock.take(t, len(reqs))
		for i, req := range reqs {
			compareResults(t, fmt.Sprintf("request %d (%+v)", i, req), batched[i], one.AllowAt(at[i], req))
		}
		for _, s := range subjects {
			req := Request{Subject: s, Tier: "metered", Route: "bulk", RoutePerMinute: 20}
			res := r.AllowAt(now, req)
			compareResults(t, "after the batch, "+string(s), res, one.AllowAt(clock.take(t, 1)[0], req))
		}
	})
}

// scriptClock is a go-redis hook that records Redis's clock at each
// decision allowScript made, in the order they were sent: a batch sent as
// one call reads it once for all its decisions, a pipeline once each.
type scriptClock struct {
	mu sync.Mutex
	at []time.Time
}

func (c *scriptClock) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scriptClock) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		c.record(cmd)
		return err
	}
}

func (c *scriptClock) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			c.record(cmd)
		}
		return err
	}
}

// record notes the clock of each decision in cmd's reply, if cmd is an
// allowScript call that succeeded.
func (c *scriptClock) record(cmd redis.Cmder) {
	var vals []int64
	switch cmd := cmd.(type) {
	case *redis.IntSliceCmd: // a batch as one call
		vals = cmd.Val()
	case *redis.Cmd: // one decision of a pipeline
		vals, _ = cmd.Int64Slice()
	}
	if name := cmd.Name(); (name != "evalsha" && name != "eval") || len(vals) < scriptReply {
		return
	}
	// The reply of a group does not say how many decisions it holds: the
	// first argument of each group does.
	args := cmd.Args()
	numKeys, _ := args[2].(int)
	decisions := 0
	for g := range numKeys / scriptKeys {
		n, _ := args[3+numKeys+g*(scriptArgs+1)].(int)
		decisions += n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for range decisions {
		c.at = append(c.at, time.UnixMicro(vals[replyNow]))
	}
}

// take returns the clocks recorded since the last take, which must be n.
func (c *scriptClock) take(t *testing.T, n int) []time.Time {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	at := c.at
	c.at = nil
	if len(at) != n {
		t.Fatalf("Redis's clock read for %d decisions, want %d", len(at), n)
	}
	return at
}

// routeOnlyInput is the script's input of a route-only request of
// subject, on a route of capacity a minute: keys and arguments as AllowAt
// sends them.
func routeOnlyInput(subject Subject, capacity int64) scriptInput {
	return scriptInput{
		subject: subject, route: "forms",
		args: [scriptArgs]int64{1, 0, 0, capacity, 0, 0, time.Now().Add(time.Hour).Unix()},
	}
}

// sameLane returns n subjects that b sends in one lane.
func sameLane(b *scriptBatcher, n int) []Subject {
	var out []Subject
	for i := 0; len(out) < n; i++ {
		s := Subject("subject-" + strconv.Itoa(i))
		if len(out) == 0 || b.lane(s) == b.lane(out[0]) {
			out = append(out, s)
		}
	}
	return out
}

// compareResults fails t unless got and want are the same decision with
// the same buckets, their times within a millisecond (Redis counts in
// microseconds, the local limiter in nanoseconds).
func compareResults(t *testing.T, what string, got, want Result) {
	t.Helper()
	near := func(x, y time.Duration) bool {
		return x == y || (x != InfDuration && y != InfDuration && (x-y).Abs() <= time.Millisecond)
	}
	if got.Allowed != want.Allowed || got.Reason != want.Reason || got.NumBuckets != want.NumBuckets ||
		got.MonthlyQuota != want.MonthlyQuota || got.MonthlyUsed != want.MonthlyUsed || !near(got.RetryAfter, want.RetryAfter) {
		t.Fatalf("%s: batched %+v, local %+v", what, got, want)
	}
	for i, b := range got.Applied() {
		w := want.Buckets[i]
		if b.Policy != w.Policy || b.Limit != w.Limit || b.Remaining != w.Remaining || !near(b.Reset, w.Reset) {
			t.Fatalf("%s: bucket %d batched %+v, local %+v", what, i, b, w)
		}
	}
}

// A sender wakes every call of its batch before its lane takes another.
// A sender that let its lane go first, and was then held up (preempted on
// a busy host), could see the slice that holds its batch taken again for
// a later one while it still read it for the calls to wake: it would wake
// calls of that batch instead of the rest of its own. Those are never
// woken, and the calls woken twice keep a wake-up for their next use,
// whose callers then return with an empty reply while their calls stay
// queued, to fail a whole batch later with a deadline long past (the
// Redis-mode fallbacks under load of docs/BENCHMARKS.md, 2026-12-07).
//
// Here a call of the test's, in the middle of a batch, holds its sender
// in its wake-ups (its done channel is full) while other callers make
// decisions of their own; once it lets go, every caller must have its own
// reply, with each decision counted once, and no failure.
func TestRedisBatchWakesItsCallsBeforeTheNext(t *testing.T) {
	forEachBatchMode(t, RedisOptions{Timeout: time.Minute, FailureThreshold: 1 << 20}, func(t *testing.T, srv *redistest.Server, r *Redis) {
		huge := int64(1e12)
		if err := r.Local().SetTiers(map[string]Tier{"huge": {RequestsPerHour: huge, BurstPerMinute: huge, MonthlyQuota: huge}}); err != nil {
			t.Fatal(err)
		}
		subjects := sameLane(r.batch, 2)
		req := Request{Subject: subjects[0], Tier: "huge"}
		l := r.batch.lane(req.Subject)
		var mu sync.Mutex
		var used []int64 // each reply's monthly count
		var returned atomic.Int32
		decide := func(n int) {
			for range n {
				u := r.Allow(req).MonthlyUsed
				mu.Lock()
				used = append(used, u)
				mu.Unlock()
			}
			returned.Add(1)
		}

		// Behind a lone call held by the paused server, a batch: its
		// sender, a caller, the held call, more callers (more than the
		// other callers below, so that the batches they make fit in this
		// one's slice).
		const size, others, each = 24, 16, 20
		held := &scriptCall{in: routeOnlyInput(subjects[1], 4), deadline: time.Now().Add(time.Minute), done: make(chan struct{}, 1)}
		held.done <- struct{}{}
		srv.Pause()
		for i := range 1 + size {
			if i == 3 {
				l.mu.Lock()
				l.queue = append(l.queue, held)
				l.mu.Unlock()
			} else {
				go decide(1)
			}
			waitPending(t, r, i+1)
		}
		srv.Resume()
		// The lone call and the batch's second caller are answered: the
		// batch's sender is stuck on the held call.
		waitFor(t, "the first two calls answered", func() bool { return returned.Load() == 2 })

		for range others {
			go decide(each)
		}
		waitFor(t, "the other callers done or queued", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return int(returned.Load())-2+len(l.queue) == others
		})
		<-held.done // lets the batch's sender go on
		waitFor(t, "every caller answered", func() bool { return returned.Load() == size+others })
		// Calls woken twice would answer their next callers at once.
		for range others {
			go decide(each)
		}
		waitFor(t, "every caller answered again", func() bool { return returned.Load() == size+2*others })

		if st := r.Stats(); st.Failures != 0 || st.Fallbacks != 0 {
			t.Fatalf("decisions failed or fell back: %+v", st)
		}
		const decisions = size + 2*others*each
		seen := make([]int, decisions+1)
		for _, u := range used {
			if u < 1 || u > decisions {
				t.Fatalf("a reply counted %d decisions, want 1 to %d", u, decisions)
			}
			seen[u]++
		}
		for u, n := range seen[1:] {
			if n != 1 {
				t.Fatalf("%d replies counted %d decisions, want exactly one", n, u+1)
			}
		}
	})
}

// TestRedisIdleLaneTakesTheReadyCallers: a call that finds its lane idle
// yields first, so callers ready to run go in its round trip rather than
// in a second one. With one P the test's goroutines run only once it
// waits: the last started finds the lane idle and yields, the others
// queue, and the yielding call takes them all in one batch; decided as
// one after the other, exactly the burst passes.
func TestRedisIdleLaneTakesTheReadyCallers(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv, RedisOptions{Timeout: 10 * time.Second})
	r.Allow(Request{Subject: "warm-up", Tier: "free"})
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	before := r.Stats()
	results := decideAll(r, time.Now(), repeat(Request{Subject: "ready", Tier: "tiny"}, 4))
	st := r.Stats()
	if got := admitted(results); got != 3 || st.Fallbacks != 0 {
		t.Fatalf("%d admitted, want the burst of 3; stats %+v", got, st)
	}
	if got := st.RoundTrips - before.RoundTrips; got != 1 {
		t.Errorf("4 ready callers took %d round trips, want 1", got)
	}
}
