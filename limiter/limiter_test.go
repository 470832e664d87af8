package limiter

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is a Tuesday in March: no default calendar rule is active.
var t0 = time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)

var testTiers = map[string]Tier{
	"free":    {RequestsPerHour: 100, BurstPerMinute: 10},
	"tiny":    {RequestsPerHour: 5, BurstPerMinute: 3},
	"basic":   {RequestsPerHour: 1000, BurstPerMinute: 50},
	"premium": {RequestsPerHour: 10000, BurstPerMinute: 200},
	"metered": {RequestsPerHour: 1000, BurstPerMinute: 100, MonthlyQuota: 5},
}

func newTestLimiter(t testing.TB, opts Options) *Limiter {
	t.Helper()
	if opts.Tiers == nil {
		opts.Tiers = testTiers
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	l, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// step is one request in a table: at t0+at, with cost, and what must come
// back. Fields left zero are not checked (want* as -1 means "check 0").
type step struct {
	at         time.Duration
	cost       int
	allowed    bool
	reason     Reason
	hour       int64 // remaining in the hour bucket; -1 = not checked
	minute     int64 // remaining in the minute bucket; -1 = not checked
	route      int64 // remaining in the route bucket; -1 = not checked
	retryAfter time.Duration
}

func runSteps(t *testing.T, l *Limiter, req Request, steps []step) {
	t.Helper()
	for i, s := range steps {
		req.Cost = s.cost
		res := l.AllowAt(t0.Add(s.at), req)
		if res.Allowed != s.allowed {
			t.Fatalf("step %d (t0+%s cost %d): allowed = %v, want %v (%+v)", i, s.at, s.cost, res.Allowed, s.allowed, res)
		}
		wantReason := s.reason
		if !s.allowed && wantReason == ReasonNone {
			wantReason = ReasonRateLimited
		}
		if res.Reason != wantReason {
			t.Errorf("step %d: reason = %v, want %v", i, res.Reason, wantReason)
		}
		if res.RetryAfter != s.retryAfter {
			t.Errorf("step %d: retry after = %v, want %v", i, res.RetryAfter, s.retryAfter)
		}
		for _, c := range []struct {
			policy string
			want   int64
		}{{PolicyHour, s.hour}, {PolicyMinute, s.minute}, {PolicyRoute, s.route}} {
			if c.want < 0 {
				continue
			}
			b, ok := find(res, c.policy)
			if !ok {
				t.Errorf("step %d: no %s bucket in result", i, c.policy)
				continue
			}
			if b.Remaining != c.want {
				t.Errorf("step %d: %s remaining = %d, want %d", i, c.policy, b.Remaining, c.want)
			}
		}
	}
}

func find(res Result, policy string) (BucketState, bool) {
	for _, b := range res.Applied() {
		if b.Policy == policy {
			return b, true
		}
	}
	return BucketState{}, false
}

func TestAllowAtSteps(t *testing.T) {
	const x = -1 // not checked
	cases := []struct {
		name  string
		req   Request
		steps []step
	}{
		{
			// free: hour 100 (a token every 36 s), minute 10 (every 6 s).
			name: "burst, refill and cost above one",
			req:  Request{Subject: "k1", Tier: "free"},
			steps: []step{
				{at: 0, cost: 5, allowed: true, hour: 95, minute: 5, route: x},
				{at: 0, cost: 5, allowed: true, hour: 90, minute: 0, route: x},
				{at: 0, cost: 1, allowed: false, hour: 90, minute: 0, route: x, retryAfter: 6 * time.Second},
				{at: 5 * time.Second, cost: 1, allowed: false, hour: 90, minute: 0, route: x, retryAfter: time.Second},
				{at: 6 * time.Second, cost: 1, allowed: true, hour: 89, minute: 0, route: x},
				{at: 6 * time.Second, cost: 1, allowed: false, hour: 89, minute: 0, route: x, retryAfter: 6 * time.Second},
				// 24 s later four tokens are back; three are taken.
				{at: 30 * time.Second, cost: 3, allowed: true, hour: 86, minute: 1, route: x},
				{at: 30 * time.Second, cost: 2, allowed: false, hour: 86, minute: 1, route: x, retryAfter: 6 * time.Second},
				// Full again after 84 s; a minute's burst fits, more never does.
				{at: 90 * time.Second, cost: 10, allowed: true, hour: 78, minute: 0, route: x},
				{at: 150 * time.Second, cost: 11, allowed: false, hour: x, minute: 10, route: x, retryAfter: InfDuration},
			},
		},
		{
			// tiny: hour 5 (a token every 720 s), minute 3 (every 20 s).
			name: "all or nothing: an empty minute bucket leaves the hour bucket untouched",
			req:  Request{Subject: "k2", Tier: "tiny"},
			steps: []step{
				{at: 0, cost: 3, allowed: true, hour: 2, minute: 0, route: x},
				{at: 0, cost: 1, allowed: false, hour: 2, minute: 0, route: x, retryAfter: 20 * time.Second},
				{at: 1 * time.Second, cost: 1, allowed: false, hour: 2, minute: 0, route: x, retryAfter: 19 * time.Second},
				{at: 20 * time.Second, cost: 1, allowed: true, hour: 1, minute: 0, route: x},
				// Minute has 1 of 2, hour 1 of 2: wait for the later, the hour.
				{at: 40 * time.Second, cost: 2, allowed: false, hour: 1, minute: 1, route: x, retryAfter: 680 * time.Second},
				{at: 40 * time.Second, cost: 1, allowed: true, hour: 0, minute: 0, route: x},
				// The minute bucket refills but the hour bucket does not yet.
				{at: 100 * time.Second, cost: 1, allowed: false, hour: 0, minute: 3, route: x, retryAfter: 620 * time.Second},
				{at: 720 * time.Second, cost: 1, allowed: true, hour: 0, minute: 2, route: x},
			},
		},
		{
			name: "route bucket on top of the tier",
			req:  Request{Subject: "k3", Tier: "free", Route: "forms.read", RoutePerMinute: 2},
			steps: []step{
				{at: 0, cost: 1, allowed: true, hour: 99, minute: 9, route: 1},
				{at: 0, cost: 1, allowed: true, hour: 98, minute: 8, route: 0},
				// The route denies; the tier buckets keep their tokens.
				{at: 0, cost: 1, allowed: false, hour: 98, minute: 8, route: 0, retryAfter: 30 * time.Second},
				{at: 30 * time.Second, cost: 1, allowed: true, hour: 97, minute: 9, route: 0},
			},
		},
		{
			name: "route only: the tier's burst does not apply",
			req:  Request{Subject: "k4", Tier: "free", Route: "events.ingest", RoutePerMinute: 20, RouteOnly: true},
			steps: []step{
				{at: 0, cost: 15, allowed: true, hour: x, minute: x, route: 5},
				{at: 0, cost: 5, allowed: true, hour: x, minute: x, route: 0},
				{at: 0, cost: 1, allowed: false, hour: x, minute: x, route: 0, retryAfter: 3 * time.Second},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, newTestLimiter(t, Options{}), tc.req, tc.steps)
		})
	}
}

func TestRouteOnlyAppliesOneBucket(t *testing.T) {
	l := newTestLimiter(t, Options{})
	res := l.AllowAt(t0, Request{Subject: "k", Tier: "free", Route: "bulk", RoutePerMinute: 600, RouteOnly: true})
	if res.NumBuckets != 1 || res.Buckets[0].Policy != PolicyRoute {
		t.Fatalf("buckets = %+v, want only the route", res.Applied())
	}
	// A separate route of the same subject has its own bucket; the tier
	// buckets were never touched.
	u := l.Peek(t0, "k", "free")
	if u.Hour.Remaining != 100 || u.Minute.Remaining != 10 {
		t.Errorf("tier buckets used by a route-only request: %+v", u)
	}
	// Without a route limit a route-only request has nothing to check.
	res = l.AllowAt(t0, Request{Subject: "k", Tier: "free", RouteOnly: true})
	if !res.Allowed || res.NumBuckets != 0 {
		t.Errorf("route-only without a route limit: %+v", res)
	}
}

func TestUnknownTierGetsStrictest(t *testing.T) {
	l := newTestLimiter(t, Options{})
	res := l.AllowAt(t0, Request{Subject: "k", Tier: "platinum"})
	if b, _ := find(res, PolicyHour); b.Limit != 5 {
		t.Errorf("hour limit for unknown tier = %d, want the strictest tier's 5", b.Limit)
	}
	if u := l.Peek(t0, "k", "nope"); u.Tier != "tiny" {
		t.Errorf("Peek tier = %q, want tiny", u.Tier)
	}
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want error
	}{
		{"no tiers", Options{}, ErrNoTiers},
		{"zero hour", Options{Tiers: map[string]Tier{"a": {BurstPerMinute: 1}}}, ErrInvalidTier},
		{"zero burst", Options{Tiers: map[string]Tier{"a": {RequestsPerHour: 1}}}, ErrInvalidTier},
		{"negative quota", Options{Tiers: map[string]Tier{"a": {RequestsPerHour: 1, BurstPerMinute: 1, MonthlyQuota: -1}}}, ErrInvalidTier},
		{"name mismatch", Options{Tiers: map[string]Tier{"a": {Name: "b", RequestsPerHour: 1, BurstPerMinute: 1}}}, ErrInvalidTier},
		{"max subjects", Options{Tiers: testTiers, MaxSubjects: 1}, ErrInvalidOptions},
		{"interval", Options{Tiers: testTiers, SnapshotInterval: -time.Second}, ErrInvalidOptions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	l := newTestLimiter(t, Options{})
	if err := l.SetTiers(nil); !errors.Is(err, ErrNoTiers) {
		t.Errorf("SetTiers(nil) = %v", err)
	}
	if got := l.Tiers()["free"]; got.Name != "free" || got.RequestsPerHour != 100 {
		t.Errorf("Tiers()[free] = %+v", got)
	}
}

func TestSetTiersClampsAndRefillsGradually(t *testing.T) {
	l := newTestLimiter(t, Options{})
	req := Request{Subject: "k", Tier: "free", Cost: 4}
	if res := l.AllowAt(t0, req); !res.Allowed {
		t.Fatal("first request denied")
	}
	// Burst 10 -> 2: six tokens left, clamped to two.
	if err := l.SetTiers(map[string]Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 2}}); err != nil {
		t.Fatal(err)
	}
	u := l.Peek(t0, "k", "free")
	if u.Minute.Limit != 2 || u.Minute.Remaining != 2 {
		t.Fatalf("after reduction: %+v", u.Minute)
	}
	req.Cost = 2
	if res := l.AllowAt(t0, req); !res.Allowed {
		t.Fatal("two tokens should remain")
	}
	// Burst 2 -> 20: empty stays empty and refills at 20 a minute.
	if err := l.SetTiers(map[string]Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 20}}); err != nil {
		t.Fatal(err)
	}
	req.Cost = 1
	res := l.AllowAt(t0, req)
	if res.Allowed {
		t.Fatalf("an increase refilled at once: %+v", res)
	}
	if res.RetryAfter != 3*time.Second {
		t.Errorf("retry after = %v, want 3s (20 a minute)", res.RetryAfter)
	}
	if u := l.Peek(t0.Add(30*time.Second), "k", "free"); u.Minute.Remaining != 10 {
		t.Errorf("after 30 s: %d tokens, want 10", u.Minute.Remaining)
	}
}

func TestConcurrentExactBurst(t *testing.T) {
	l := newTestLimiter(t, Options{})
	const goroutines = 64
	var admitted atomic.Int64
	var start, done sync.WaitGroup
	start.Add(1)
	for range goroutines {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			for range 4 {
				if l.AllowAt(t0, Request{Subject: "hot", Tier: "free"}).Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	start.Done()
	done.Wait()
	if got := admitted.Load(); got != 10 {
		t.Fatalf("admitted %d of %d at a frozen clock, want exactly the burst of 10", got, goroutines*4)
	}
}

func TestHotReloadUnderLoad(t *testing.T) {
	l := newTestLimiter(t, Options{})
	cal, err := NewCalendar(time.UTC, []Rule{{Name: "double", LimitMultiplier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res := l.AllowAt(t0.Add(time.Duration(i)*time.Millisecond), Request{Subject: Subject(rune('a' + g)), Tier: "free"})
				if res.NumBuckets != 2 {
					t.Errorf("a request saw %d buckets during reload", res.NumBuckets)
					return
				}
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			l.SetCalendar(cal)
			_ = l.SetTiers(map[string]Tier{"free": {RequestsPerHour: 200, BurstPerMinute: 20}})
		} else {
			l.SetCalendar(nil)
			_ = l.SetTiers(testTiers)
		}
	}
	close(stop)
	wg.Wait()
}

func TestPeekDoesNotConsumeOrCreate(t *testing.T) {
	l := newTestLimiter(t, Options{})
	u := l.Peek(t0, "nobody", "free")
	if u.Hour.Remaining != 100 || u.Minute.Remaining != 10 || u.Hour.Window != time.Hour {
		t.Fatalf("fresh Peek = %+v", u)
	}
	if n := l.Stats().Subjects; n != 0 {
		t.Fatalf("Peek created %d entries", n)
	}
	l.AllowAt(t0, Request{Subject: "k", Tier: "metered", Cost: 3})
	for range 3 {
		u = l.Peek(t0, "k", "metered")
	}
	if u.Hour.Remaining != 997 || u.Minute.Remaining != 97 || u.MonthlyUsed != 3 || u.MonthlyQuota != 5 {
		t.Fatalf("Peek after use = %+v", u)
	}
	wantReset := time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC).Sub(t0)
	if u.MonthlyReset != wantReset {
		t.Errorf("monthly reset = %v, want %v", u.MonthlyReset, wantReset)
	}
}

func TestOver(t *testing.T) {
	l := newTestLimiter(t, Options{})
	l.AllowAt(t0, Request{Subject: "busy", Tier: "tiny", Cost: 3})  // hour 3/5 = 0.6
	l.AllowAt(t0, Request{Subject: "quiet", Tier: "free", Cost: 1}) // hour 1/100
	l.AllowAt(t0, Request{Subject: "billed", Tier: "metered", Cost: 4})
	l.AllowAt(t0, Request{Subject: "busy", Tier: "tiny", Route: "r", RoutePerMinute: 1})
	got := map[Subject]Usage{}
	l.Over(t0, 0.5, func(subject Subject, u Usage) {
		got[subject] = u
		l.Peek(t0, subject, u.Tier) // calling back into the limiter must not deadlock
	})
	if len(got) != 2 {
		t.Fatalf("Over(0.5) = %v, want busy and billed", got)
	}
	if got["busy"].Hour.Remaining != 2 || got["billed"].MonthlyUsed != 4 {
		t.Errorf("usages = %+v", got)
	}
}

func TestSweepDropsOnlyIdleEntries(t *testing.T) {
	l := newTestLimiter(t, Options{})
	l.AllowAt(t0, Request{Subject: "a", Tier: "free"})
	l.AllowAt(t0, Request{Subject: "b", Tier: "metered"})
	l.AllowAt(t0, Request{Subject: "c", Tier: "free", Route: "r", RoutePerMinute: 5})
	if n := l.Sweep(t0); n != 0 {
		t.Fatalf("swept %d busy entries", n)
	}
	// After an hour every bucket is full; only b's monthly count remains.
	if n := l.Sweep(t0.Add(time.Hour)); n != 3 {
		t.Fatalf("swept %d, want a, c and c's route", n)
	}
	if st := l.Stats(); st.Subjects != 1 || st.IdleEvictions != 3 {
		t.Fatalf("stats = %+v", st)
	}
	// Next month the counter belongs to the past.
	if n := l.Sweep(time.Date(2026, time.April, 1, 0, 0, 0, 0, time.UTC)); n != 1 {
		t.Fatalf("swept %d next month, want 1", n)
	}
}

func TestEvictionPrefersIdleThenLRU(t *testing.T) {
	l := newTestLimiter(t, Options{MaxSubjects: 3})
	// a drained, then b and c used at t0: at t0+10m b and c are full
	// again only if little was taken; make b heavy so only c is idle.
	l.AllowAt(t0, Request{Subject: "a", Tier: "tiny", Cost: 3})
	l.AllowAt(t0, Request{Subject: "b", Tier: "tiny", Cost: 3})
	l.AllowAt(t0.Add(time.Second), Request{Subject: "c", Tier: "free"})
	// At t0+2m: a and b still owe hour tokens; c (one of 100) is full.
	at := t0.Add(2 * time.Minute)
	l.AllowAt(at, Request{Subject: "d", Tier: "free"})
	st := l.Stats()
	if st.Subjects != 3 || st.IdleEvictions != 1 || st.ForcedEvictions != 0 {
		t.Fatalf("after d: %+v", st)
	}
	if u := l.Peek(at, "a", "tiny"); u.Hour.Remaining != 2 {
		t.Fatalf("a lost its state: %+v", u.Hour)
	}
	// Nothing idle now: the least recently used (a) goes, by force.
	l.AllowAt(at, Request{Subject: "e", Tier: "free"})
	st = l.Stats()
	if st.Subjects != 3 || st.ForcedEvictions != 1 {
		t.Fatalf("after e: %+v", st)
	}
	if u := l.Peek(at, "a", "tiny"); u.Hour.Remaining != 5 {
		t.Fatalf("a should have been evicted: %+v", u.Hour)
	}
	if u := l.Peek(at, "b", "tiny"); u.Hour.Remaining != 2 {
		t.Fatalf("b should have survived: %+v", u.Hour)
	}
}

func TestEvictionKeepsSubjectEntryOfARouteRequest(t *testing.T) {
	// Two entries per shard: a request's subject entry must not be evicted
	// to make room for its own route entry.
	l := newTestLimiter(t, Options{MaxSubjects: 2})
	l.AllowAt(t0, Request{Subject: "x", Tier: "tiny"})
	res := l.AllowAt(t0, Request{Subject: "y", Tier: "tiny", Cost: 2, Route: "r", RoutePerMinute: 5})
	if !res.Allowed {
		t.Fatalf("denied: %+v", res)
	}
	if u := l.Peek(t0, "y", "tiny"); u.Hour.Remaining != 3 {
		t.Fatalf("y's subject entry was lost: %+v", u.Hour)
	}
}

func TestMillionDistinctIPsStayUnderCap(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	const maxSubjects = 20_000
	l := newTestLimiter(t, Options{MaxSubjects: maxSubjects})
	buf := []byte("ip:10.")
	for i := range n {
		b := append(buf[:6], byte('0'+i/100000%10), byte('0'+i/10000%10), '.', byte('0'+i/1000%10), byte('0'+i/100%10), '.',
			byte('0'+i/10%10), byte('0'+i%10), byte('a'+i/1000000%26))
		// In the first half time moves 5 ms a request, so an IP's buckets
		// are full again (36 s) before the cap pushes it out (~100 s): those
		// evictions are idle ones. In the second half the clock stands
		// still and every eviction is forced.
		at := t0.Add(time.Duration(min(i, n/2)) * 5 * time.Millisecond)
		res := l.AllowAt(at, Request{Subject: Subject(b), Tier: "free"})
		if !res.Allowed {
			t.Fatalf("fresh IP %s denied", b)
		}
		if i%100_000 == 0 {
			if s := l.Stats().Subjects; s > maxSubjects {
				t.Fatalf("after %d IPs: %d subjects > cap %d", i, s, maxSubjects)
			}
		}
	}
	st := l.Stats()
	if st.Subjects > maxSubjects {
		t.Fatalf("%d subjects > cap %d", st.Subjects, maxSubjects)
	}
	if got := st.IdleEvictions + st.ForcedEvictions + uint64(st.Subjects); got != uint64(n) {
		t.Errorf("evictions + held = %d, want %d", got, n)
	}
	if st.IdleEvictions < uint64(n/2-2*maxSubjects) || st.ForcedEvictions < uint64(n/2-2*maxSubjects) {
		t.Errorf("idle evictions %d, forced %d: want about %d each", st.IdleEvictions, st.ForcedEvictions, n/2)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 64<<20 {
		t.Errorf("heap %d MiB after a million IPs with a cap of %d", ms.HeapAlloc>>20, maxSubjects)
	}
	runtime.KeepAlive(l)
	t.Logf("held %d, idle evictions %d, forced %d, heap %d MiB", st.Subjects, st.IdleEvictions, st.ForcedEvictions, ms.HeapAlloc>>20)
}

func TestCostBelowOneCountsAsOne(t *testing.T) {
	l := newTestLimiter(t, Options{})
	res := l.AllowAt(t0, Request{Subject: "k", Tier: "free", Cost: 0})
	if b, _ := find(res, PolicyMinute); b.Remaining != 9 {
		t.Fatalf("cost 0 took %d tokens", 10-b.Remaining)
	}
}

func TestAllowUsesInjectedClock(t *testing.T) {
	now := t0
	l := newTestLimiter(t, Options{Now: func() time.Time { return now }})
	for range 10 {
		l.Allow(Request{Subject: "k", Tier: "free"})
	}
	if l.Allow(Request{Subject: "k", Tier: "free"}).Allowed {
		t.Fatal("11th request admitted at a frozen clock")
	}
	now = now.Add(6 * time.Second)
	if !l.Allow(Request{Subject: "k", Tier: "free"}).Allowed {
		t.Fatal("refilled token not admitted")
	}
}

func TestForcedEvictionSparesMonthlyCounts(t *testing.T) {
	l := newTestLimiter(t, Options{MaxSubjects: 3})
	l.AllowAt(t0, Request{Subject: "billed", Tier: "metered", Cost: 4}) // oldest, with a count
	l.AllowAt(t0, Request{Subject: "a", Tier: "tiny", Cost: 3})
	l.AllowAt(t0, Request{Subject: "b", Tier: "tiny", Cost: 3})
	l.AllowAt(t0, Request{Subject: "c", Tier: "tiny", Cost: 3})
	if st := l.Stats(); st.ForcedEvictions != 1 {
		t.Fatalf("stats %+v", st)
	}
	if u := l.Peek(t0, "billed", "metered"); u.MonthlyUsed != 4 {
		t.Fatalf("the monthly count was evicted: %+v", u)
	}
	if u := l.Peek(t0, "a", "tiny"); u.Hour.Remaining != 5 {
		t.Fatalf("a, the oldest without a count, should have gone: %+v", u.Hour)
	}
}
