package limiter

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestResultHeaders(t *testing.T) {
	cases := []struct {
		name      string
		reqs      []Request // all at t0 but the last, which is at t0+at
		at        time.Duration
		policy    string
		ratelimit string
	}{
		{
			name:      "first request",
			reqs:      []Request{{Subject: "a", Tier: "free"}},
			policy:    `"hour";q=100;w=3600, "minute";q=10;w=60`,
			ratelimit: `"minute";r=9;t=6`,
		},
		{
			name:      "burst spent, hour tighter later",
			reqs:      []Request{{Subject: "b", Tier: "tiny", Cost: 3}, {Subject: "b", Tier: "tiny", Cost: 2}},
			at:        40 * time.Second,
			policy:    `"hour";q=5;w=3600, "minute";q=3;w=60`,
			ratelimit: `"hour";r=0;t=3560`,
		},
		{
			name:      "route bucket",
			reqs:      []Request{{Subject: "c", Tier: "free", Route: "forms", RoutePerMinute: 5, Cost: 4}},
			policy:    `"hour";q=100;w=3600, "minute";q=10;w=60, "route";q=5;w=60`,
			ratelimit: `"route";r=1;t=48`,
		},
		{
			name:      "route only",
			reqs:      []Request{{Subject: "d", Tier: "free", Route: "bulk", RoutePerMinute: 600, RouteOnly: true}},
			policy:    `"route";q=600;w=60`,
			ratelimit: `"route";r=599;t=1`,
		},
		{
			name:      "denied",
			reqs:      []Request{{Subject: "e", Tier: "free", Cost: 10}, {Subject: "e", Tier: "free"}},
			policy:    `"hour";q=100;w=3600, "minute";q=10;w=60`,
			ratelimit: `"minute";r=0;t=60`,
		},
	}
	var texts PolicyTexts // shared: each case's limits must get their own text
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLimiter(t, Options{})
			var res Result
			for i, r := range tc.reqs {
				at := t0
				if i == len(tc.reqs)-1 {
					at = at.Add(tc.at)
				}
				res = l.AllowAt(at, r)
			}
			if got := string(res.AppendPolicyHeader(nil)); got != tc.policy {
				t.Errorf("RateLimit-Policy = %s\n want %s", got, tc.policy)
			}
			if got := string(res.AppendRateLimitHeader(nil)); got != tc.ratelimit {
				t.Errorf("RateLimit = %s\n want %s", got, tc.ratelimit)
			}
			text := texts.Of(&res)
			if text.Policy != tc.policy {
				t.Errorf("PolicyTexts: RateLimit-Policy = %s\n want %s", text.Policy, tc.policy)
			}
			for i, b := range res.Applied() {
				if text.Limits[i] != strconv.FormatInt(b.Limit, 10) {
					t.Errorf("PolicyTexts: limit %d = %q, want %d", i, text.Limits[i], b.Limit)
				}
			}
		})
	}
}

func TestHeadersOfEmptyResult(t *testing.T) {
	var res Result
	if got := res.AppendPolicyHeader(nil); len(got) != 0 {
		t.Errorf("policy %q", got)
	}
	if got := res.AppendRateLimitHeader([]byte("x")); string(got) != "x" {
		t.Errorf("ratelimit %q", got)
	}
	if _, ok := res.Tightest(); ok {
		t.Error("Tightest of no buckets")
	}
}

func TestTightestPrefersLongerResetOnTie(t *testing.T) {
	res := Result{NumBuckets: 2, Buckets: [MaxBuckets]BucketState{
		{Policy: PolicyHour, Remaining: 0, Reset: time.Hour},
		{Policy: PolicyMinute, Remaining: 0, Reset: time.Minute},
	}}
	if b, _ := res.Tightest(); b.Policy != PolicyHour {
		t.Errorf("tightest = %s", b.Policy)
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	l := newTestLimiter(t, Options{})
	req := Request{Subject: "k", Tier: "premium", Route: "r", RoutePerMinute: 1 << 30}
	l.AllowAt(t0, req)
	buf := make([]byte, 0, 256)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		res := l.AllowAt(t0.Add(time.Duration(i)*time.Second), req)
		buf = res.AppendPolicyHeader(buf[:0])
		buf = res.AppendRateLimitHeader(buf[:0])
		_ = l.Peek(t0, "k", "premium")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decision, want 0", allocs)
	}
}

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{ReasonNone: "none", ReasonRateLimited: "rate_limited", ReasonQuotaExceeded: "quota_exceeded", 9: "reason(9)"} {
		if r.String() != want {
			t.Errorf("%d: %q", r, r.String())
		}
	}
}

// policyResult is a result of an hour and a minute bucket of the given
// capacities, as a calendar rule scales them.
func policyResult(hour, minute int64) *Result {
	r := &Result{NumBuckets: 2}
	r.Buckets[0] = BucketState{Policy: PolicyHour, Limit: hour, Remaining: hour - 1, Window: HourWindow}
	r.Buckets[1] = BucketState{Policy: PolicyMinute, Limit: minute, Remaining: minute / 2, Window: time.Minute}
	return r
}

// A set of limits is formatted once; other limits (a calendar rule
// doubling the tier's) get their own text, and what the buckets hold
// does not matter.
func TestPolicyTextsPerSetOfLimits(t *testing.T) {
	var texts PolicyTexts
	first := texts.Of(policyResult(100, 10))
	again := policyResult(100, 10)
	again.Buckets[0].Remaining, again.Buckets[1].Reset = 3, time.Second
	if texts.Of(again) != first {
		t.Error("the same limits were formatted twice")
	}
	scaled := texts.Of(policyResult(200, 20))
	if want := `"hour";q=200;w=3600, "minute";q=20;w=60`; scaled.Policy != want || scaled.Limits != [MaxBuckets]string{"200", "20"} {
		t.Errorf("scaled limits: %+v, want %s", scaled, want)
	}
	if first.Policy != `"hour";q=100;w=3600, "minute";q=10;w=60` {
		t.Errorf("first text changed: %s", first.Policy)
	}
	if texts.Of(&Result{}).Policy != "" {
		t.Error("no buckets, yet a policy")
	}
}

// More sets than the table has slots: every text is still right, and the
// set seen last is kept.
func TestPolicyTextsBounded(t *testing.T) {
	var texts PolicyTexts
	for i := range int64(3 * policySlots) {
		r := policyResult(1000+i, 10)
		if got, want := texts.Of(r).Policy, string(r.AppendPolicyHeader(nil)); got != want {
			t.Fatalf("set %d: %s, want %s", i, got, want)
		}
	}
	last := policyResult(1000+3*policySlots-1, 10)
	if kept := texts.Of(last); texts.Of(last) != kept {
		t.Error("the last set was formatted again")
	}
}

// Callers adding and reading sets at once all get their own limits'
// text (run with -race).
func TestPolicyTextsConcurrent(t *testing.T) {
	var texts PolicyTexts
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				r := policyResult(int64(1+(g+i)%16), 5)
				if got, want := texts.Of(r).Policy, string(r.AppendPolicyHeader(nil)); got != want {
					t.Errorf("%s, want %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
