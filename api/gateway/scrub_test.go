package gateway

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/keys"
)

// sampleKey has a key's shape and a matching checksum (keys.LooksLikeKey).
const sampleKey = "wsk_0szFgYdSmloyEYeF8nGoeGY0Od59lV2vssa1"

func TestSampleKeyLooksLikeAKey(t *testing.T) {
	if !keys.LooksLikeKey(sampleKey) || keys.LooksLikeKey(sampleKey[:len(sampleKey)-1]+"2") {
		t.Fatal("sampleKey must pass the format check, and only with its own checksum")
	}
}

func TestScrubQuery(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"api_key=" + sampleKey, ""},
		{"a=1&api_key=x&b=2", "a=1&b=2"},
		{"API_KEY=x;a=1", "a=1"},
		{"a=1;api%5Fkey=x&b", "a=1&b"},
		{"token=" + sampleKey + "&a=1", "a=1"},
		{"token=" + strings.Replace(sampleKey, "_", "%5F", 1), ""},
		{"a=%zz&api_key", "a=%zz"},
		{"a=1&&b=2", "a=1&&b=2"},
	}
	for _, c := range cases {
		got, changed := scrubQuery(c.in)
		if got != c.want || changed != (c.in != c.want) {
			t.Errorf("scrubQuery(%q) = %q, %v; want %q", c.in, got, changed, c.want)
		}
	}
}

func TestScrubCookies(t *testing.T) {
	cases := []struct{ in, want string }{
		{"theme=dark", "theme=dark"},
		{"theme=dark; " + httpapi.SessionCookie + "=s; lang=en", "theme=dark; lang=en"},
		{httpapi.SecureSessionCookie + "=s", ""},
		{"token=" + sampleKey + ";theme=dark", "theme=dark"},
		{`token="` + sampleKey + `"`, ""},
		{"xapiwarden_session=s", "xapiwarden_session=s"},
	}
	for _, c := range cases {
		got, changed := scrubCookies(c.in)
		if got != c.want || changed != (c.in != c.want) {
			t.Errorf("scrubCookies(%q) = %q, %v; want %q", c.in, got, changed, c.want)
		}
	}
}

func TestCarriesKey(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		value string
		want  bool
	}{
		{sampleKey, true},
		{"  " + sampleKey + " ", true},
		{"Bearer " + sampleKey, true},
		{"bearer   " + sampleKey, true},
		{"Token " + sampleKey, true},
		{basic(sampleKey + ":"), true},
		{basic("user:" + sampleKey), true},
		{basic("user:password"), false},
		{"Basic !!!", false},
		{"Bearer app-user-jwt", false},
		{sampleKey[:len(sampleKey)-1], false},
		{"Mozilla/5.0 (X11; Linux x86_64)", false},
	}
	for _, c := range cases {
		if got := carriesKey(c.value); got != c.want {
			t.Errorf("carriesKey(%q) = %v, want %v", c.value, got, c.want)
		}
	}
}

func TestApiwardenHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Apiwarden-Owner": true, "X_apiwarden_owner": true, "X-APIWARDEN_TIER": true, "x_Apiwarden-Key_id": true,
		"X-Apiwarden": false, "X-Api-Key": false, "X-Apiwardens": true, "Xapiwarden-Owner": false,
	} {
		if got := apiwardenHeader(name); got != want {
			t.Errorf("apiwardenHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestScrubHeadersUpgrade(t *testing.T) {
	cases := []struct {
		upgrade    []string
		connection string
		kept       bool
	}{
		{[]string{"websocket"}, "Upgrade", true},
		{[]string{"WebSocket"}, "keep-alive, upgrade", true},
		{[]string{"websocket"}, "keep-alive", false},
		{[]string{"h2c"}, "Upgrade, HTTP2-Settings", false},
		{[]string{"websocket, h2c"}, "Upgrade", false},
		{[]string{"websocket", "h2c"}, "Upgrade", false},
	}
	for _, c := range cases {
		h := http.Header{"Upgrade": c.upgrade, "Connection": {c.connection}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}}
		scrubHeaders(h)
		if _, ok := h["Upgrade"]; ok != c.kept {
			t.Errorf("Upgrade %q with Connection %q: kept %v, want %v", c.upgrade, c.connection, ok, c.kept)
		}
		if _, ok := h["Http2-Settings"]; ok != c.kept {
			t.Errorf("Upgrade %q: HTTP2-Settings kept %v", c.upgrade, ok)
		}
	}
}

// The common request, with nothing to scrub or only its key header to
// drop, costs no allocation.
func TestScrubbingTheCommonRequestAllocatesNothing(t *testing.T) {
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"Mozilla/5.0 (X11; Linux x86_64)"}, "Cookie": {"theme=dark; lang=en"},
		"Referer": {"https://app.example/page?x=1"}, "Authorization": {"Bearer app-user-jwt"}}
	keyValue := []string{sampleKey}
	if n := testing.AllocsPerRun(100, func() {
		h["X-Api-Key"] = keyValue
		scrubHeaders(h)
		scrubQuery("a=1&b=2")
	}); n != 0 || h["X-Api-Key"] != nil || len(h) != 5 {
		t.Fatalf("%v allocations; headers left %v", n, h)
	}
}

func TestScrubValuesKeepsTheOthers(t *testing.T) {
	values := []string{"a", sampleKey, "b", "Bearer " + sampleKey}
	h := http.Header{"X-List": values}
	scrubHeaders(h)
	if got := h["X-List"]; !slices.Equal(got, []string{"a", "b"}) || values[1] != sampleKey {
		t.Fatalf("X-List %q (the original slice now %q)", got, values)
	}
}

// queryParts splits a query as scrubQuery does, leaving out empty parts.
func queryParts(q string) []string {
	return slices.DeleteFunc(strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' }), func(s string) bool { return s == "" })
}

// FuzzScrubQuery: what is left has no key parameter, keeps every other
// parameter in order, and scrubbing it again changes nothing.
// Seeds: testdata/fuzz/FuzzScrubQuery.
func FuzzScrubQuery(f *testing.F) {
	f.Add("a=1&api_key=" + sampleKey + ";b=2")
	f.Fuzz(func(t *testing.T, q string) {
		clean, changed := scrubQuery(q)
		if !changed && clean != q {
			t.Fatalf("unchanged, but %q became %q", q, clean)
		}
		want := slices.DeleteFunc(queryParts(q), dropParam)
		if got := queryParts(clean); !slices.Equal(got, want) {
			t.Fatalf("%q became %q: parameters %q, want %q", q, clean, got, want)
		}
		if again, changed := scrubQuery(clean); changed {
			t.Fatalf("%q scrubbed twice: %q, then %q", q, clean, again)
		}
	})
}

// cookieParts splits a Cookie header as scrubCookies does.
func cookieParts(v string) []string {
	var parts []string
	for _, p := range strings.Split(v, ";") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}

// FuzzScrubCookies: what is left has no session cookie and no key,
// keeps every other cookie in order, and scrubbing it again changes
// nothing. Seeds: testdata/fuzz/FuzzScrubCookies.
func FuzzScrubCookies(f *testing.F) {
	f.Add("theme=dark; " + httpapi.SessionCookie + "=s; token=" + sampleKey)
	f.Fuzz(func(t *testing.T, v string) {
		clean, changed := scrubCookies(v)
		if !changed {
			if clean != v {
				t.Fatalf("unchanged, but %q became %q", v, clean)
			}
			return
		}
		want := slices.DeleteFunc(cookieParts(v), dropCookie)
		if got := cookieParts(clean); !slices.Equal(got, want) {
			t.Fatalf("%q became %q: cookies %q, want %q", v, clean, got, want)
		}
		if again, changed := scrubCookies(clean); changed {
			t.Fatalf("%q scrubbed twice: %q, then %q", v, clean, again)
		}
	})
}

// FuzzScrubHeaders: after scrubbing, no header reads as apiwarden's, no
// value carries a key, and a second scrub changes nothing.
// Seeds: testdata/fuzz/FuzzScrubHeaders.
func FuzzScrubHeaders(f *testing.F) {
	f.Add("Authorization", "Bearer "+sampleKey)
	f.Fuzz(func(t *testing.T, name, value string) {
		h := http.Header{name: {value, "kept"}, "Referer": {value}, "Cookie": {value}}
		scrubHeaders(h)
		for k, vs := range h {
			if apiwardenHeader(k) {
				t.Fatalf("%s survived", k)
			}
			for _, v := range vs {
				if carriesKey(v) {
					t.Fatalf("%s: %q survived", k, v)
				}
			}
		}
		again := h.Clone()
		scrubHeaders(again)
		if len(again) != len(h) {
			t.Fatalf("a second scrub changed %v into %v", h, again)
		}
		for k, vs := range h {
			if !slices.Equal(again[k], vs) {
				t.Fatalf("a second scrub changed %v into %v", h, again)
			}
		}
	})
}

// A key inside a longer value is a key too: the value goes (from a
// Cookie, the pair; from a Referer, the whole URL when the key is not a
// query parameter), while values with no key, or only a key-shaped token
// whose checksum fails, stay.
func TestScrubHeadersKeyInsideLongerValue(t *testing.T) {
	forged := sampleKey[:len(sampleKey)-1] + "2"
	h := http.Header{
		"X-Debug":       {"user=bob key=" + sampleKey + " ok", "plain"},
		"X-Auth":        {"token " + sampleKey + ", other"},
		"Authorization": {"Bearer " + sampleKey + ",extra"},
		"X-Prefixed":    {"ab" + sampleKey},
		"Cookie":        {"prefs=k:" + sampleKey + "; theme=dark"},
		"Referer":       {"https://app.example/keys/" + sampleKey + "/page"},
		"X-Forged":      {"key=" + forged},
		"User-Agent":    {"Mozilla/5.0 (X11; Linux x86_64)"},
	}
	scrubHeaders(h)
	want := http.Header{
		"X-Debug":    {"plain"},
		"Cookie":     {"theme=dark"},
		"X-Forged":   {"key=" + forged},
		"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64)"},
	}
	if len(h) != len(want) {
		t.Fatalf("headers left %v, want %v", h, want)
	}
	for name, values := range want {
		if !slices.Equal(h[name], values) {
			t.Errorf("%s: %q, want %q", name, h[name], values)
		}
	}
}

// BenchmarkScrubHeaders scrubs a common browser request's headers (the
// key header dropped, nothing else to do) and one that carries a key
// inside a longer value.
func BenchmarkScrubHeaders(b *testing.B) {
	common := http.Header{"Accept": {"application/json, text/plain, */*"}, "Accept-Language": {"en-GB,en;q=0.9"},
		"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
		"Cookie":     {"theme=dark; lang=en; _ga=GA1.2.1234567890.1700000000"}, "Referer": {"https://app.example/page?x=1"},
		"Authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEyMyJ9.c2lnbmF0dXJl"}, "X-Request-Id": {"req_01HV3K8M9P2Q4R6S8T0V"}}
	keyValue := []string{sampleKey}
	b.Run("common", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			common["X-Api-Key"] = keyValue
			scrubHeaders(common)
		}
	})
}
