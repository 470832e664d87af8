package gateway

import (
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
)

// TestHeaderValues: the headers a request is given through one
// headerValues read as they would had each value been made apart, also
// when the values outgrow its buffer or its slices, and none changes
// when later ones are added.
func TestHeaderValues(t *testing.T) {
	now := time.Unix(1_800_000_000, 500)
	peer := netip.MustParseAddr("2001:db8::7")
	id := &keys.Identity{ID: "key_1", OwnerID: "owner-1", ScopesHeader: "forms:read,admin"}
	bucket := func(policy string, limit, remaining int64) limiter.BucketState {
		return limiter.BucketState{Policy: policy, Limit: limit, Remaining: remaining, Window: time.Minute, Reset: 1500 * time.Millisecond}
	}
	g := new(gate) // shared: its policy texts must not mix the cases' limits
	for _, tc := range []struct {
		name    string
		hops    int // X-Forwarded-For values the request came with
		buckets int
		code    decision.Code
		extra   int // headers set after the gateway's own
	}{
		{name: "allowed, no chain", buckets: 2, code: decision.Valid},
		{name: "rate limited, three hops", hops: 3, buckets: 3, code: decision.RateLimited},
		{name: "a chain longer than the buffer", hops: 40, buckets: 3, code: decision.Valid, extra: 2},
		{name: "more headers than slices", hops: 1, buckets: 3, code: decision.RateLimited, extra: 5},
		{name: "no limits", code: decision.Valid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := enforce.Decision{Code: tc.code, Identity: id, Tier: "gold", Limited: tc.buckets > 0,
				Limit: limiter.Result{NumBuckets: tc.buckets, RetryAfter: 2500 * time.Millisecond}}
			for i := range tc.buckets {
				d.Limit.Buckets[i] = bucket([]string{"hour", "minute", "route"}[i], int64(1000*(i+1)), int64(10*i))
			}
			var prior []string
			for i := range tc.hops {
				prior = append(prior, "198.51.100."+strconv.Itoa(i))
			}

			h, hv := http.Header{}, new(headerValues)
			g.setLimitValues(headerMap(h), hv, &d, now)
			chain, host, proto := forwardedValues(hv, peer, prior, "", "", "example.com", false, nil)
			hv.set(h, "X-Forwarded-For", chain)
			hv.set(h, "X-Forwarded-Host", host)
			hv.set(h, "X-Forwarded-Proto", proto)
			hv.set(h, "X-Request-Id", "req-1")
			setIdentityHeaders(headerMap(h), hv, d.Identity, d.Tier)
			for i := range tc.extra {
				hv.set(h, "X-Extra-"+strconv.Itoa(i), hv.value(strconv.AppendInt(hv.room(), int64(i), 10)))
			}

			want := http.Header{
				"X-Forwarded-For":    {strings.Join(append(prior, peer.String()), ", ")},
				"X-Forwarded-Host":   {"example.com"},
				"X-Forwarded-Proto":  {"http"},
				"X-Request-Id":       {"req-1"},
				"X-Apiwarden-Key-Id": {"key_1"},
				"X-Apiwarden-Owner":  {"owner-1"},
				"X-Apiwarden-Scopes": {"forms:read,admin"},
				"X-Apiwarden-Tier":   {"gold"},
			}
			if tc.buckets > 0 {
				tight, _ := d.Limit.Tightest()
				want["Ratelimit-Policy"] = []string{string(d.Limit.AppendPolicyHeader(nil))}
				want["Ratelimit"] = []string{string(d.Limit.AppendRateLimitHeader(nil))}
				want["X-Ratelimit-Limit"] = []string{strconv.FormatInt(tight.Limit, 10)}
				want["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(tight.Remaining, 10)}
				want["X-Ratelimit-Reset"] = []string{strconv.FormatInt(now.Add(tight.Reset).Unix()+1, 10)}
			}
			if tc.code.IsRateLimited() {
				want["Retry-After"] = []string{"3"}
			}
			for i := range tc.extra {
				want["X-Extra-"+strconv.Itoa(i)] = []string{strconv.Itoa(i)}
			}
			if !reflect.DeepEqual(h, want) {
				t.Errorf("headers\n got %q\nwant %q", h, want)
			}
			for name, vs := range h {
				if len(vs) != 1 || cap(vs) != 1 {
					t.Errorf("%s: %d values, capacity %d: an Add would write into the next header's slot", name, len(vs), cap(vs))
				}
			}
		})
	}
}

// TestHeaderValuesAllocations: one allocation for every header of an
// allowed, limited request on the proxy.
func TestHeaderValuesAllocations(t *testing.T) {
	d := enforce.Decision{Code: decision.Valid, Identity: &keys.Identity{ID: "key_1"}, Tier: "gold", Limited: true,
		Limit: limiter.Result{NumBuckets: 2, Buckets: [limiter.MaxBuckets]limiter.BucketState{
			{Policy: "hour", Limit: 100, Remaining: 99, Window: time.Hour}, {Policy: "minute", Limit: 10, Remaining: 9, Window: time.Minute}}}}
	resp, up := make(http.Header, 8), make(http.Header, 8)
	peer, now := netip.MustParseAddr("192.0.2.1"), time.Now()
	g := new(gate)
	n := testing.AllocsPerRun(100, func() {
		hv := new(headerValues)
		g.setLimitValues(headerMap(resp), hv, &d, now)
		chain, host, proto := forwardedValues(hv, peer, []string{"198.51.100.1"}, "", "", "example.com", false, nil)
		hv.set(up, "X-Forwarded-For", chain)
		hv.set(up, "X-Forwarded-Host", host)
		hv.set(up, "X-Forwarded-Proto", proto)
		setIdentityHeaders(headerMap(up), hv, d.Identity, d.Tier)
		clear(resp)
		clear(up)
	})
	if n != 1 {
		t.Errorf("%v allocations, want 1", n)
	}
}
