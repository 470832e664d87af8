package metrics

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apiwarden/apiwarden/decision"
)

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: not split
		{"héllo", 3, "hé"},
		{"日本", 4, "日"},
		{"🎉🎉", 5, "🎉"},
		{"", 0, ""},
	} {
		got := truncateUTF8(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestStripAPIKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/v1/x", "/v1/x"},
		{"/v1/x?a=1", "/v1/x?a=1"},
		{"/v1/x?api_key=wsk_abc", "/v1/x"},
		{"/v1/x?a=1&api_key=wsk_abc&b=2", "/v1/x?a=1&b=2"},
		{"/v1/x?API_KEY=wsk_abc", "/v1/x"},
		{"/v1/x?api%5Fkey=wsk_abc&c=3", "/v1/x?c=3"},
		{"/v1/x?api_key=a&api_key=b", "/v1/x"},
		{"/v1/x?apikeyish=1", "/v1/x?apikeyish=1"},
		{"/v1/x?a=1;api_key=z", "/v1/x?a=1"},
	} {
		if got := stripAPIKey(tc.in); got != tc.want {
			t.Errorf("stripAPIKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := "/p?" + strings.Repeat("x=1&", 100) + "api_key=secret"
	if strings.Contains(stripAPIKey(long), "secret") {
		t.Fatal("key survived")
	}
}

func TestParseCacheStatus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want CacheStatus
	}{
		{"", CacheUnknown},
		{"HIT", CacheHit},
		{"hit", CacheHit},
		{"Hit from cloudfront", CacheHit},
		{"Miss from cloudfront", CacheMiss},
		{"TCP_MISS", CacheMiss},
		{"TCP_HIT", CacheHit},
		{"MISS, HIT", CacheHit}, // Fastly: any layer hit
		{"MISS, MISS", CacheMiss},
		{"EXPIRED", CacheMiss},
		{"STALE", CacheStale},
		{"UPDATING", CacheStale},
		{"REVALIDATED", CacheHit},
		{"BYPASS", CacheBypass},
		{"DYNAMIC", CacheBypass},
		{"bypass", CacheBypass},
		{"something else", CacheUnknown},
		{"ExampleCache; hit", CacheHit},
		{"ExampleCache; hit; ttl=-30", CacheStale},
		{"OriginCache; fwd=uri-miss", CacheMiss},
		{"OriginCache; fwd=uri-miss; stored, CDN; hit", CacheHit},
		{"CDN; fwd=bypass", CacheBypass},
		{`CDN; fwd=stale; fwd-status=304`, CacheStale},
		{"CDN; fwd=request, Edge; fwd=miss", CacheMiss},
	} {
		if got := ParseCacheStatus(tc.in); got != tc.want {
			t.Errorf("ParseCacheStatus(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorCategoryNames(t *testing.T) {
	for c := ErrorNone; c < errorCategoryCount; c++ {
		back, err := ParseErrorCategory(c.String())
		if err != nil || back != c {
			t.Errorf("%v does not round-trip: %v %v", c, back, err)
		}
		var u ErrorCategory
		text, _ := c.MarshalText()
		if err := u.UnmarshalText(text); err != nil || u != c {
			t.Errorf("%v text round trip: %v", c, err)
		}
	}
	if c, err := ParseErrorCategory(""); err != nil || c != ErrorNone {
		t.Error(`"" is not ErrorNone`)
	}
	if _, err := ParseErrorCategory("teapot"); !errors.Is(err, ErrUnknownName) {
		t.Errorf("unknown category: %v", err)
	}
}

func TestCategorizeError(t *testing.T) {
	for _, tc := range []struct {
		status int
		d      decision.Code
		want   ErrorCategory
	}{
		{200, decision.Valid, ErrorNone},
		{304, decision.None, ErrorNone},
		{404, decision.Valid, ErrorClient},
		{401, decision.MissingKey, ErrorAuth},
		{403, decision.None, ErrorAuth},
		{429, decision.QuotaExceeded, ErrorRateLimited},
		{429, decision.None, ErrorRateLimited},
		{503, decision.Valid, ErrorUpstream5xx},
	} {
		if got := CategorizeError(tc.status, tc.d); got != tc.want {
			t.Errorf("CategorizeError(%d, %q) = %v, want %v", tc.status, tc.d, got, tc.want)
		}
	}
}

func TestValidMethod(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "PROPFIND": true, "-2+3": true, "+1+1": true, "M-SEARCH": true,
		"": false, "=HYPERLINK(\"http://ev.il\",\"x\")": false, "@SUM": false, "GET /": false, "GE\tT": false,
		strings.Repeat("A", MaxMethodBytes): true, strings.Repeat("A", MaxMethodBytes+1): false,
	} {
		if got := ValidMethod(m); got != want {
			t.Errorf("ValidMethod(%q) = %v, want %v", m, got, want)
		}
	}
}

// BenchmarkParseCacheStatus parses the X-Cache value a proxied answer
// most often carries, and a Cache-Status one.
func BenchmarkParseCacheStatus(b *testing.B) {
	for _, v := range []string{"HIT", "Miss from cloudfront", "ExampleCache; hit"} {
		b.Run(v, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ParseCacheStatus(v)
			}
		})
	}
}
