package limiter_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/store"
)

func Example() {
	l, err := limiter.New(limiter.Options{
		Tiers: map[string]limiter.Tier{
			"free":    {RequestsPerHour: 100, BurstPerMinute: 10},
			"premium": {RequestsPerHour: 10000, BurstPerMinute: 200, MonthlyQuota: 1_000_000},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Stop()

	now := time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)
	req := limiter.Request{Subject: limiter.KeySubject("key_123"), Tier: "free", Cost: 10}
	res := l.AllowAt(now, req)
	fmt.Println(res.Allowed)

	req.Cost = 1
	res = l.AllowAt(now, req)
	fmt.Println(res.Allowed, res.Reason, res.RetryAfter)
	fmt.Printf("RateLimit-Policy: %s\n", res.AppendPolicyHeader(nil))
	fmt.Printf("RateLimit: %s\n", res.AppendRateLimitHeader(nil))
	// Output:
	// true
	// false rate_limited 6s
	// RateLimit-Policy: "hour";q=100;w=3600, "minute";q=10;w=60
	// RateLimit: "minute";r=0;t=60
}

func ExampleLimiter_AllowAt() {
	l, _ := limiter.New(limiter.Options{
		Tiers: map[string]limiter.Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 10}},
	})
	t0 := time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)
	// A form upload route allows 2 a minute on top of the tier.
	req := limiter.Request{Subject: limiter.KeySubject("key_123"), Tier: "free", Route: limiter.RouteBucketOf("/forms/upload"), RoutePerMinute: 2}
	for _, at := range []time.Duration{0, 0, 0, 30 * time.Second} {
		res := l.AllowAt(t0.Add(at), req)
		tightest, _ := res.Tightest()
		fmt.Printf("t0+%-3s allowed=%-5v %s remaining %d\n", at, res.Allowed, tightest.Policy, tightest.Remaining)
	}
	// Output:
	// t0+0s  allowed=true  route remaining 1
	// t0+0s  allowed=true  route remaining 0
	// t0+0s  allowed=false route remaining 0
	// t0+30s allowed=true  route remaining 0
}

func ExampleNewCalendar() {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		fmt.Println(err)
		return
	}
	cal, _ := limiter.NewCalendar(ny, []limiter.Rule{
		{Name: "peak-season", Months: []time.Month{5, 6, 7, 8, 9}, Tiers: []string{"free", "basic"}, LimitMultiplier: 0.75},
		{Name: "wedding-day", Weekdays: []time.Weekday{time.Saturday}, LimitMultiplier: 1.5, AlertSeverityBoost: 1},
	})
	// 02:00 UTC on a Sunday is still Saturday evening in New York.
	at := time.Date(2026, time.June, 14, 2, 0, 0, 0, time.UTC)
	fmt.Println(cal.Active(at), cal.Multiplier(at, "free"), cal.Multiplier(at, "premium"), cal.SeverityBoost(at))
	// Output: [peak-season wedding-day] 1.125 1.5 1
}

func ExampleLimiter_Peek() {
	l, _ := limiter.New(limiter.Options{
		Tiers: map[string]limiter.Tier{"basic": {RequestsPerHour: 1000, BurstPerMinute: 50, MonthlyQuota: 50000}},
	})
	now := time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)
	l.AllowAt(now, limiter.Request{Subject: limiter.KeySubject("key_123"), Tier: "basic", Cost: 20})
	u := l.Peek(now, limiter.KeySubject("key_123"), "basic")
	fmt.Printf("hour %d/%d, minute %d/%d, month %d/%d\n",
		u.Hour.Remaining, u.Hour.Limit, u.Minute.Remaining, u.Minute.Limit, u.MonthlyUsed, u.MonthlyQuota)
	// Output: hour 980/1000, minute 30/50, month 20/50000
}

func ExampleResult_AppendRateLimitHeader() {
	l, _ := limiter.New(limiter.Options{
		Tiers: map[string]limiter.Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 10}},
	})
	res := l.AllowAt(time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC),
		limiter.Request{Subject: limiter.IPSubject(netip.MustParseAddr("192.0.2.7")), Tier: "free", Cost: 3})
	// Reuse one buffer per response: appending does not allocate.
	buf := make([]byte, 0, 128)
	buf = res.AppendRateLimitHeader(buf[:0])
	fmt.Printf("RateLimit: %s\n", buf)
	// Output: RateLimit: "minute";r=7;t=18
}

// A limiter with a store survives a restart: Stop writes a snapshot, New
// restores it, and the time in between refills the buckets.
func ExampleLimiter_Run() {
	dir, _ := os.MkdirTemp("", "apiwarden-limiter")
	defer os.RemoveAll(dir)
	tiers := map[string]limiter.Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 10}}
	t0 := time.Date(2026, time.March, 10, 12, 0, 0, 0, time.UTC)

	s, _ := store.Open(dir, store.Options{})
	l, _ := limiter.New(limiter.Options{Store: s, Tiers: tiers, Now: func() time.Time { return t0 }})
	go l.Run(context.Background()) // sweeps and snapshots every 10 s
	l.Allow(limiter.Request{Subject: limiter.KeySubject("key_123"), Tier: "free", Cost: 10})
	l.Stop() // ends Run and writes the last snapshot
	s.Close()

	// Thirty seconds later, in a new process: five tokens are back.
	s, _ = store.Open(dir, store.Options{})
	defer s.Close()
	later := t0.Add(30 * time.Second)
	l, _ = limiter.New(limiter.Options{Store: s, Tiers: tiers, Now: func() time.Time { return later }})
	defer l.Stop()
	fmt.Println(l.Peek(later, limiter.KeySubject("key_123"), "free").Minute.Remaining)
	// Output: 5
}

func ExampleNewRedis() {
	local, _ := limiter.New(limiter.Options{
		Tiers: map[string]limiter.Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 10}},
	})
	// Every instance using this Redis draws from the same buckets. Nothing
	// listens on port 1, so here the call fails, local decides, and after
	// FailureThreshold failures in a row (one here; 3 by default) the
	// breaker opens: Healthy reports false and, for CoolDown, local decides
	// without trying Redis.
	shared, err := limiter.NewRedis(local, limiter.RedisOptions{URL: "redis://127.0.0.1:1/0", FailureThreshold: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer shared.Close()
	res := shared.Allow(limiter.Request{Subject: limiter.KeySubject("key_123"), Tier: "free"})
	fmt.Println(res.Allowed, shared.Healthy())
	// Output: true false
}
