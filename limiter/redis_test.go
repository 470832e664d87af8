package limiter

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiwarden/apiwarden/internal/redistest"
)

// decider is what the API layer needs of either backend.
type decider interface {
	AllowAt(now time.Time, req Request) Result
	Allow(req Request) Result
	Peek(now time.Time, subject Subject, tier string) Usage
}

var (
	_ decider = (*Limiter)(nil)
	_ decider = (*Redis)(nil)
)

// redisClient is a client of srv, closed when t ends.
func redisClient(t testing.TB, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func newTestRedis(t testing.TB, srv *redistest.Server, opts RedisOptions) *Redis {
	t.Helper()
	local := newTestLimiter(t, Options{Now: time.Now})
	if opts.URL == "" && opts.Client == nil {
		opts.URL = srv.URL()
	}
	r, err := NewRedis(local, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedisAllOrNothing(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv, RedisOptions{Timeout: time.Second})
	now := time.Now()
	cases := []struct {
		name      string
		req       Request
		allowed   bool
		reason    Reason
		hour, min int64 // remaining; -1 not checked
		route     int64 // remaining; -1 not checked
		retryMin  time.Duration
		retryMax  time.Duration
	}{
		{"drain the burst", Request{Subject: "a", Tier: "tiny", Cost: 3}, true, ReasonNone, 2, 0, -1, 0, 0},
		{"minute empty: hour untouched", Request{Subject: "a", Tier: "tiny"}, false, ReasonRateLimited, 2, 0, -1, 19 * time.Second, 20 * time.Second},
		{"cost above capacity never fits", Request{Subject: "a", Tier: "tiny", Cost: 6}, false, ReasonRateLimited, 2, 0, -1, InfDuration, InfDuration},
		{"route 1", Request{Subject: "b", Tier: "free", Route: "forms", RoutePerMinute: 2}, true, ReasonNone, 99, 9, 1, 0, 0},
		{"route 2", Request{Subject: "b", Tier: "free", Route: "forms", RoutePerMinute: 2}, true, ReasonNone, 98, 8, 0, 0, 0},
		{"route denies, tier untouched", Request{Subject: "b", Tier: "free", Route: "forms", RoutePerMinute: 2}, false, ReasonRateLimited, 98, 8, 0, 29 * time.Second, 30 * time.Second},
		{"route only", Request{Subject: "c", Tier: "free", Route: "bulk", RoutePerMinute: 20, RouteOnly: true, Cost: 15}, true, ReasonNone, -1, -1, 5, 0, 0},
		{"quota", Request{Subject: "d", Tier: "metered", Cost: 5}, true, ReasonNone, 995, 95, -1, 0, 0},
		{"quota exceeded", Request{Subject: "d", Tier: "metered"}, false, ReasonQuotaExceeded, 995, 95, -1, time.Second, 31 * 24 * time.Hour},
		{"unknown tier is the strictest", Request{Subject: "e", Tier: "gold"}, true, ReasonNone, 4, 2, -1, 0, 0},
	}
	for _, tc := range cases {
		res := r.AllowAt(now, tc.req)
		if res.Allowed != tc.allowed || res.Reason != tc.reason {
			t.Fatalf("%s: allowed %v reason %v, want %v %v (%+v)", tc.name, res.Allowed, res.Reason, tc.allowed, tc.reason, res)
		}
		if res.RetryAfter < tc.retryMin || res.RetryAfter > tc.retryMax {
			t.Errorf("%s: retry after %v, want %v..%v", tc.name, res.RetryAfter, tc.retryMin, tc.retryMax)
		}
		for _, c := range []struct {
			policy string
			want   int64
		}{{PolicyHour, tc.hour}, {PolicyMinute, tc.min}, {PolicyRoute, tc.route}} {
			if c.want < 0 {
				continue
			}
			if b, ok := find(res, c.policy); !ok || b.Remaining != c.want {
				t.Errorf("%s: %s = %+v, want remaining %d", tc.name, c.policy, b, c.want)
			}
		}
	}
	if st := r.Stats(); st.Fallbacks != 0 || !st.Healthy || st.Calls != uint64(len(cases)) {
		t.Errorf("stats %+v", st)
	}
	res := r.AllowAt(now, Request{Subject: "f", Tier: "free"})
	if got := string(res.AppendPolicyHeader(nil)); got != `"hour";q=100;w=3600, "minute";q=10;w=60` {
		t.Errorf("policy header %s", got)
	}
	if got := string(res.AppendRateLimitHeader(nil)); got != `"minute";r=9;t=6` {
		t.Errorf("ratelimit header %s", got)
	}
}

func TestRedisSharedBetweenInstances(t *testing.T) {
	srv := redistest.Start(t)
	// Generous timeout: this test is about atomicity, not latency, and must
	// not fall back under the race detector.
	a := newTestRedis(t, srv, RedisOptions{Timeout: 5 * time.Second})
	b := newTestRedis(t, srv, RedisOptions{Timeout: 5 * time.Second})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst := a
			if i%2 == 1 {
				inst = b
			}
			for range 3 {
				if inst.Allow(Request{Subject: "shared", Tier: "free"}).Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != 10 {
		t.Fatalf("two instances admitted %d, want exactly the burst of 10", got)
	}
	if a.Stats().Fallbacks+b.Stats().Fallbacks != 0 {
		t.Fatal("a decision fell back to local buckets")
	}
	// Both see the same state.
	ua, ub := a.Peek(time.Now(), "shared", "free"), b.Peek(time.Now(), "shared", "free")
	if ua.Minute.Remaining != 0 || ub.Minute.Remaining != 0 || ua.Hour.Remaining != 90 || ub.Hour.Remaining != 90 {
		t.Fatalf("peeks differ or are wrong: %+v / %+v", ua, ub)
	}
}

func TestRedisFallbackAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	// A killed server on loopback refuses at once, so the timeout only has
	// to outlast a slow first call on a loaded machine (50 ms did not).
	r := newTestRedis(t, srv, RedisOptions{Timeout: 2 * time.Second, FailureThreshold: 2, CoolDown: time.Minute})
	now := time.Now()
	req := Request{Subject: "k", Tier: "tiny"}
	if !r.AllowAt(now, req).Allowed || !r.Healthy() {
		t.Fatal("first request not decided by a healthy Redis")
	}

	srv.Kill()
	// Two failures open the breaker; meanwhile the local buckets decide.
	for i := range 2 {
		if !r.AllowAt(now, req).Allowed {
			t.Fatalf("fallback request %d denied", i)
		}
	}
	st := r.Stats()
	if r.Healthy() || st.Breaker != "open" || st.Fallbacks != 2 || st.Failures != 2 || st.BreakerOpens != 1 {
		t.Fatalf("after two failures: %+v", st)
	}
	// Open: no more calls; the local burst of 3 still holds.
	if !r.AllowAt(now, req).Allowed {
		t.Fatal("third local request denied")
	}
	if res := r.AllowAt(now, req); res.Allowed {
		t.Fatal("local fallback admitted past the burst")
	}
	if st := r.Stats(); st.Calls != 3 || st.Fallbacks != 4 {
		t.Fatalf("open breaker still calls Redis: %+v", st)
	}
	if u := r.Peek(now, "k", "tiny"); u.Minute.Remaining != 0 {
		t.Fatalf("Peek while open should read the local buckets: %+v", u.Minute)
	}

	srv.Restart()
	// Before the cool-down ends nothing changes.
	r.AllowAt(now.Add(59*time.Second), Request{Subject: "k2", Tier: "tiny"})
	if r.Healthy() {
		t.Fatal("closed before the cool-down")
	}
	// The first request after it probes, succeeds and closes the breaker;
	// the restarted Redis (no persistence) has fresh buckets for k.
	res := r.AllowAt(now.Add(time.Minute), req)
	if !r.Healthy() || !res.Allowed {
		t.Fatalf("after restart: healthy %v, %+v", r.Healthy(), res)
	}
	if b, _ := find(res, PolicyMinute); b.Remaining != 2 {
		t.Fatalf("not the shared bucket: %+v", b)
	}
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// After Redis returns, Run's timer closes the breaker with no request
// arriving to probe it (issue 18): an idle instance must not report the
// fallback for ever. The test polls for the closed state and asserts no
// wall-clock bound: a loaded machine may stretch the cool-down's timer as
// it likes. The guard below only turns "never closes" into a failure
// instead of a hung test; it is 60 cool-downs, not a figure under test.
func TestRedisBreakerRecoversWithoutTraffic(t *testing.T) {
	srv := redistest.Start(t)
	const coolDown = 500 * time.Millisecond
	// Refused calls fail at once; the timeout only has to outlast a slow
	// probe on a loaded machine.
	r := newTestRedis(t, srv, RedisOptions{Timeout: time.Second, FailureThreshold: 1, CoolDown: coolDown})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	defer func() {
		r.Stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	srv.Kill()
	if !r.Allow(Request{Subject: "k", Tier: "free"}).Allowed || r.Healthy() {
		t.Fatalf("one failure should open the breaker and fall back: %+v", r.Stats())
	}
	srv.Restart() // the same port; returns once Redis answers
	hung := time.Now().Add(60 * coolDown)
	for !r.Healthy() {
		if time.Now().After(hung) {
			t.Fatalf("breaker still %s after Redis returned, with no traffic: %+v", r.Stats().Breaker, r.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := r.Stats(); st.Calls != 1 || st.Fallbacks != 1 {
		t.Fatalf("a request, not the timer, probed: %+v", st)
	}
	if res := r.Allow(Request{Subject: "k", Tier: "free"}); !res.Allowed || r.Stats().Fallbacks != 1 {
		t.Fatalf("the next request was not decided by Redis: %+v %+v", res, r.Stats())
	}
}

// A paused Redis answers nothing: the decision falls back to the local
// limiter once the Timeout passes instead of waiting for Redis, and the
// breaker opens. No wall-clock bound is asserted (a loaded machine can
// stretch any figure); a hung call would hang the test instead.
func TestRedisTimeoutFallsBackQuickly(t *testing.T) {
	srv := redistest.Start(t)
	// The timeout is short so the paused call ends soon; a loaded machine's
	// first call can outlast it too, so the warm-up repeats until Redis
	// decided one call, each timed-out try reopening the breaker for 1 ms.
	r := newTestRedis(t, srv, RedisOptions{Timeout: 50 * time.Millisecond, FailureThreshold: 1, CoolDown: time.Millisecond})
	req := Request{Subject: "k", Tier: "free"}
	deadline := time.Now().Add(30 * time.Second)
	for st := r.Stats(); st.Calls == st.Failures || !st.Healthy; st = r.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("Redis decided no warm-up call: %+v", st)
		}
		if !r.Allow(req).Allowed {
			t.Fatal("warm-up denied")
		}
	}
	before := r.Stats()
	// A paused server accepts nothing and answers nothing.
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	res := r.Allow(req)
	t.Logf("a paused Redis held the request for %v (timeout 50ms)", time.Since(start))
	after := r.Stats()
	if !res.Allowed || r.Healthy() || after.Failures != before.Failures+1 || after.Fallbacks != before.Fallbacks+1 {
		t.Fatalf("no fallback: %+v\nbefore %+v\nafter  %+v", res, before, after)
	}
	if err := r.Ping(context.Background()); !errors.Is(err, ErrRedisUnavailable) {
		t.Fatalf("Ping on a paused server: %v", err)
	}
}

func TestRedisPeekAndClamp(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv, RedisOptions{Timeout: time.Second})
	now := time.Now()
	r.AllowAt(now, Request{Subject: "k", Tier: "free", Cost: 4})
	r.AllowAt(now, Request{Subject: "q", Tier: "metered", Cost: 2})
	for range 2 {
		if u := r.Peek(now, "k", "free"); u.Minute.Remaining != 6 || u.Hour.Remaining != 96 || u.Minute.Limit != 10 {
			t.Fatalf("Peek: %+v", u)
		}
	}
	if u := r.Peek(now, "q", "metered"); u.MonthlyUsed != 2 || u.MonthlyQuota != 5 {
		t.Fatalf("Peek quota: %+v", u)
	}
	if u := r.Peek(now, "nobody", "free"); u.Minute.Remaining != 10 || u.Minute.Reset != 0 {
		t.Fatalf("Peek of an unknown subject: %+v", u)
	}
	// A smaller burst clamps the six tokens left to two, in Peek and in the script.
	if err := r.Local().SetTiers(map[string]Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 2}, "metered": testTiers["metered"]}); err != nil {
		t.Fatal(err)
	}
	if u := r.Peek(now, "k", "free"); u.Minute.Remaining != 2 || u.Minute.Limit != 2 {
		t.Fatalf("Peek after reduction: %+v", u.Minute)
	}
	if res := r.AllowAt(now, Request{Subject: "k", Tier: "free", Cost: 2}); !res.Allowed {
		t.Fatalf("the two clamped tokens: %+v", res)
	}
	if res := r.AllowAt(now, Request{Subject: "k", Tier: "free"}); res.Allowed {
		t.Fatalf("past the clamped burst: %+v", res)
	}
}

func TestRedisKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv, RedisOptions{Timeout: time.Second})
	r.Allow(Request{Subject: "k", Tier: "metered", Route: "forms", RoutePerMinute: 6})
	c := redisClient(t, srv)
	ctx := context.Background()
	month := r.local.viewAt(time.Now()).day.monthID
	for key, longest := range map[string]time.Duration{
		r.tierKey("k"):           time.Minute, // 1 of 100/min: full after 0.6 s
		r.routeKey("k", "forms"): 11 * time.Second,
		r.monthKey("k", month):   32 * 24 * time.Hour,
	} {
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > longest {
			t.Errorf("%s: ttl %v (%v), want 0..%v", key, ttl, err, longest)
		}
	}
}

// A connection the client opens sends nothing the server rejects: every
// command costs a round trip, and an error reply on each new connection
// fills the server's error stats, where operators look for real faults.
// The one NOSCRIPT is how a script gets loaded, once per server: its
// first EVALSHA is refused and go-redis sends it whole.
func TestRedisSendsNoRejectedCommands(t *testing.T) {
	srv := redistest.Start(t)
	c := redisClient(t, srv)
	ctx := context.Background()
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r := newTestRedis(t, srv, RedisOptions{Timeout: time.Second})
	for range 3 {
		if res := r.Allow(Request{Subject: "k", Tier: "metered"}); !res.Allowed {
			t.Fatalf("refused: %+v", res)
		}
	}
	stats, err := c.Info(ctx, "errorstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stats, "\n") {
		if strings.HasPrefix(line, "errorstat_") && !strings.HasPrefix(line, "errorstat_NOSCRIPT:count=1") {
			t.Errorf("the server rejected commands: %s", strings.TrimSpace(line))
		}
	}
}

// What a decision stores is what every instance sharing the Redis reads,
// older ones included (their allowScript, peekScript and mergeScript): a
// hash of h, hc, m, mc, c per subject, one of r, rc, c per route bucket,
// and an integer counter per month, all integers in microseconds and
// tokens. A change to it needs a migration story for mixed versions
// (docs/BENCHMARKS.md, "Redis mode on both edges").
func TestRedisStoredFormat(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv, RedisOptions{Timeout: 5 * time.Second})
	reqs := repeat(Request{Subject: "k", Tier: "metered", Route: "forms", RoutePerMinute: 6}, 4)
	if got := admitted(decideAll(r, time.Now(), reqs)); got != 4 {
		t.Fatalf("%d of 4 admitted", got)
	}
	c := redisClient(t, srv)
	ctx := context.Background()
	month := r.local.viewAt(time.Now()).day.monthID
	if keys := c.Keys(ctx, "*").Val(); len(keys) != 3 {
		t.Fatalf("keys %q, want the tier, route and month keys", keys)
	}
	now := time.Now().UnixMicro()
	for key, fields := range map[string][]string{
		r.tierKey("k"):           {"h", "hc", "m", "mc", "c"},
		r.routeKey("k", "forms"): {"r", "rc", "c"},
	} {
		got, err := c.HGetAll(ctx, key).Result()
		if err != nil || len(got) != len(fields) {
			t.Fatalf("%s: %v (%v), want the fields %v", key, got, err, fields)
		}
		for _, f := range fields {
			v, err := strconv.ParseInt(got[f], 10, 64)
			if err != nil || v <= 0 {
				t.Errorf("%s %s = %q, want a positive integer", key, f, got[f])
			}
			if (f == "c" || f == "h" || f == "m" || f == "r") && (v < now-time.Minute.Microseconds() || v > now+time.Hour.Microseconds()) {
				t.Errorf("%s %s = %d, want unix microseconds near %d", key, f, v, now)
			}
		}
	}
	if used, err := c.Get(ctx, r.monthKey("k", month)).Result(); err != nil || used != "4" {
		t.Fatalf("monthly counter %q (%v), want 4", used, err)
	}
}

func TestNewRedisValidates(t *testing.T) {
	local := newTestLimiter(t, Options{})
	for name, tc := range map[string]struct {
		local *Limiter
		opts  RedisOptions
	}{
		"no local":    {nil, RedisOptions{URL: "redis://127.0.0.1:1"}},
		"no address":  {local, RedisOptions{}},
		"bad url":     {local, RedisOptions{URL: "http://x"}},
		"bad timeout": {local, RedisOptions{URL: "redis://127.0.0.1:1", Timeout: -1}},
	} {
		if _, err := NewRedis(tc.local, tc.opts); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBreakerTransitions(t *testing.T) {
	b := breaker{threshold: 2, coolDown: 10}
	steps := []struct {
		op    string // allow, ok, fail
		at    int64
		want  bool // allow's answer, or whether ok/fail changed the state
		state int32
	}{
		{"allow", 0, true, breakerClosed},
		{"fail", 0, false, breakerClosed},
		{"ok", 0, false, breakerClosed}, // a success resets the count
		{"fail", 1, false, breakerClosed},
		{"fail", 2, true, breakerOpen}, // until 12
		{"allow", 11, false, breakerOpen},
		{"allow", 12, true, breakerHalfOpen}, // the probe
		{"allow", 12, false, breakerHalfOpen},
		{"fail", 13, true, breakerOpen}, // until 23
		{"allow", 23, true, breakerHalfOpen},
		{"ok", 23, true, breakerClosed},
		{"allow", 24, true, breakerClosed},
	}
	for i, s := range steps {
		var got bool
		switch s.op {
		case "allow":
			got = b.allow(s.at)
		case "ok":
			got = b.success()
		case "fail":
			got = b.failure(s.at)
		}
		if got != s.want || b.state.Load() != s.state {
			t.Fatalf("step %d %s@%d: got %v state %s, want %v %s", i, s.op, s.at, got,
				breakerStateName(b.state.Load()), s.want, breakerStateName(s.state))
		}
	}
	if b.opens.Load() != 2 {
		t.Errorf("opens = %d", b.opens.Load())
	}
}

// probe, the timer's allow, lets a probe through only from open after
// the cool-down, and otherwise says how long to wait.
func TestBreakerProbe(t *testing.T) {
	b := breaker{threshold: 1, coolDown: 10}
	steps := []struct {
		op    string // probe, ok, fail, allow
		at    int64
		due   bool
		wait  time.Duration
		state int32
	}{
		{"probe", 0, false, 10, breakerClosed}, // closed: look again in a cool-down
		{"fail", 5, false, 0, breakerOpen},     // until 15
		{"probe", 6, false, 9, breakerOpen},
		{"probe", 15, true, 0, breakerHalfOpen},
		{"probe", 15, false, 10, breakerHalfOpen}, // one probe at a time
		{"allow", 15, false, 0, breakerHalfOpen},  // requests too
		{"fail", 16, false, 0, breakerOpen},       // until 26
		{"allow", 26, true, 0, breakerHalfOpen},   // a request probes first
		{"probe", 26, false, 10, breakerHalfOpen},
		{"ok", 27, false, 0, breakerClosed},
		{"probe", 27, false, 10, breakerClosed},
	}
	for i, s := range steps {
		var due bool
		var wait time.Duration
		switch s.op {
		case "probe":
			due, wait = b.probe(s.at)
		case "allow":
			due = b.allow(s.at)
		case "ok":
			b.success()
		case "fail":
			b.failure(s.at)
		}
		if due != s.due || wait != s.wait || b.state.Load() != s.state {
			t.Fatalf("step %d %s@%d: due %v wait %v state %s, want %v %v %s", i, s.op, s.at, due, wait,
				breakerStateName(b.state.Load()), s.due, s.wait, breakerStateName(s.state))
		}
	}
}

func TestMonthKeyFormat(t *testing.T) {
	r := &Redis{prefix: "p:"}
	if got := r.monthKey("ip:1.2.3.4", int32(2026*12+2)); got != "p:{ip:1.2.3.4}:m:2026-03" {
		t.Errorf("month key %q", got)
	}
	if got := r.monthKey("k", int32(2026*12+11)); got != "p:{k}:m:2026-12" {
		t.Errorf("month key %q", got)
	}
}

// BenchmarkRedisAllowAt measures a shared decision against a loopback
// redis-server: serial is one caller at a time (the latency of a round
// trip), parallel one caller per GOMAXPROCS, parallel64 64 callers, as
// many as the proxy benchmark's wrk connections, all on one subject, and
// subjects64 64 callers spread over 1,000 subjects, so a batch holds
// different subjects. redis-µs/op is the server's CPU time per decision
// (user and system, from INFO cpu), the part of a decision the proxy's
// host pays in redis-server.
func BenchmarkRedisAllowAt(b *testing.B) {
	for _, bc := range []struct {
		name     string
		callers  int // per GOMAXPROCS; 0: serial
		subjects int
	}{{"serial", 0, 1}, {"parallel", 1, 1}, {"parallel64", 0, 1}, {"subjects64", 0, 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := redistest.Start(b)
			r := newTestRedis(b, srv, RedisOptions{Timeout: time.Second})
			subjects := benchSubjects(bc.subjects)
			req := Request{Subject: subjects[0], Tier: "big"}
			if err := r.Local().SetTiers(benchTiers); err != nil {
				b.Fatal(err)
			}
			r.Allow(req) // load the script
			info := redisClient(b, srv)
			cpu0, own0 := redisCPU(b, info), processCPU(b)
			b.ReportAllocs()
			b.ResetTimer()
			switch bc.name {
			case "serial":
				for b.Loop() {
					r.Allow(req)
				}
			default:
				callers := bc.callers
				if callers == 0 {
					callers = max(64/runtime.GOMAXPROCS(0), 1)
				}
				b.SetParallelism(callers)
				var next atomic.Uint64
				b.RunParallel(func(pb *testing.PB) {
					req := req
					for pb.Next() {
						req.Subject = subjects[next.Add(1)%uint64(len(subjects))]
						r.Allow(req)
					}
				})
			}
			b.StopTimer()
			st := r.Stats()
			if st.Fallbacks != 0 {
				b.Fatalf("%d decisions fell back", st.Fallbacks)
			}
			b.ReportMetric(float64(st.Calls)/float64(max(st.RoundTrips, 1)), "scripts/roundtrip")
			b.ReportMetric(float64(redisCPU(b, info)-cpu0)/float64(time.Microsecond)/float64(max(st.Calls, 1)), "redis-µs/op")
			b.ReportMetric(float64(processCPU(b)-own0)/float64(time.Microsecond)/float64(max(st.Calls, 1)), "client-µs/op")
		})
	}
}

// processCPU reads the CPU time this process has used, user and system.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// redisCPU reads the CPU time redis-server has used, user and system.
func redisCPU(tb testing.TB, c *redis.Client) time.Duration {
	tb.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var sum time.Duration
	for _, line := range strings.Split(info, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_user" || name == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("INFO cpu: %s", line)
			}
			sum += time.Duration(f * float64(time.Second))
		}
	}
	return sum
}
