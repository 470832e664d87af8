package enforce_test

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/store/storetest"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) // a Tuesday in November: no calendar rule

type world struct {
	engine *enforce.Engine
	keys   *keys.Service
	now    atomic.Int64
	secret map[string]string // name -> secret
	ids    map[string]string // name -> key id
}

func (w *world) at() time.Time { return time.Unix(0, w.now.Load()).UTC() }

// worldSecret is the key secret of every world's key service.
const worldSecret = "world-secret-world-secret"

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldOf(t, nil)
}

// newWorldOf is newWorld with a system of record for its keys (nil: a
// single instance, the keys in bbolt alone).
func newWorldOf(t testing.TB, records keys.SystemOfRecord) *world {
	t.Helper()
	w := &world{secret: map[string]string{}, ids: map[string]string{}}
	w.now.Store(t0.UnixNano())
	st := storetest.MustOpen(t)
	svc, err := keys.New(keys.Options{Store: st, Secret: []byte(worldSecret), Now: w.at, Records: records,
		Policy: keys.Policy{Tiers: []string{"free", "basic", "enterprise"}, DefaultTier: "free",
			Scopes: []string{"forms:read", "forms:write", "admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	lim, err := limiter.New(limiter.Options{Now: w.at, Tiers: map[string]limiter.Tier{
		"free":       {Name: "free", RequestsPerHour: 100, BurstPerMinute: 3},
		"basic":      {Name: "basic", RequestsPerHour: 500, BurstPerMinute: 5},
		"enterprise": {Name: "enterprise", RequestsPerHour: 10000, BurstPerMinute: 500, MonthlyQuota: 0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	routes, err := enforce.NewRoutes([]enforce.Route{
		{Pattern: "/api/forms/*", Preset: enforce.Protected, Scopes: []string{"forms:read"}},
		{Pattern: "/public/*", Preset: enforce.Public},
		{Pattern: "/admin/*", Preset: enforce.Admin},
		{Pattern: "/bulk/*", Preset: enforce.HighVolume, RequestsPerMinute: 2},
		{Pattern: "/internal/*", Preset: enforce.Internal},
		{Pattern: "/export/*", Preset: enforce.Protected, AllowQueryKey: true},
		{Pattern: "/expensive/*", Preset: enforce.Protected, Cost: 4},
	}, enforce.Route{Preset: enforce.Protected})
	if err != nil {
		t.Fatal(err)
	}
	w.engine = enforce.NewEngine(svc, lim, enforce.Policy{Routes: routes, PublicTier: "free", StrictestTier: "free"})
	w.keys = svc
	make := func(name string, p keys.CreateParams) {
		k, s, err := svc.Create(p, "test")
		if err != nil {
			t.Fatal(err)
		}
		w.secret[name], w.ids[name] = s, k.ID
	}
	exp := t0.Add(time.Minute)
	make("basic", keys.CreateParams{Tier: "basic", Scopes: []string{"forms:read"}})
	make("noscope", keys.CreateParams{Tier: "basic"})
	make("admin", keys.CreateParams{Tier: "enterprise", Scopes: []string{"admin", "forms:read"}})
	make("ipbound", keys.CreateParams{Tier: "basic", Scopes: []string{"forms:read"}, AllowedIPs: []string{"10.0.0.0/8"}})
	make("browser", keys.CreateParams{Tier: "basic", Scopes: []string{"forms:read"}, AllowedOrigins: []string{"https://app.example.com"}})
	make("revoked", keys.CreateParams{Tier: "basic"})
	make("expiring", keys.CreateParams{Tier: "basic", ExpiresAt: &exp})
	if _, err := svc.Revoke(w.ids["revoked"], "test", ""); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) decide(key, method, path, ip, origin string) enforce.Decision {
	f := enforce.Facts{HeaderKey: w.secret[key], Method: method, Path: path, ClientIP: netip.MustParseAddr(ip), Origin: origin}
	if key != "" && w.secret[key] == "" {
		f.HeaderKey = key // a literal string, not a named key
	}
	return w.engine.Decide(w.at(), &f)
}

func TestDecisionCodes(t *testing.T) {
	w := newWorld(t)
	w.now.Store(t0.Add(2 * time.Minute).UnixNano()) // "expiring" has expired
	cases := []struct {
		name, key, method, path, ip, origin string
		want                                decision.Code
		wantTier                            string
	}{
		{"valid", "basic", "GET", "/api/forms/1", "192.0.2.1", "", decision.Valid, "basic"},
		{"missing key", "", "GET", "/api/forms/1", "192.0.2.1", "", decision.MissingKey, ""},
		{"garbage key", "wsk_nonsense", "GET", "/api/forms/1", "192.0.2.1", "", decision.NotFound, ""},
		{"revoked", "revoked", "GET", "/other", "192.0.2.1", "", decision.Revoked, ""},
		{"expired", "expiring", "GET", "/other", "192.0.2.1", "", decision.Expired, ""},
		{"ip allowed", "ipbound", "GET", "/api/forms/1", "10.2.3.4", "", decision.Valid, "basic"},
		{"ip refused", "ipbound", "GET", "/api/forms/1", "192.0.2.1", "", decision.IPNotAllowed, ""},
		{"origin allowed", "browser", "GET", "/api/forms/1", "192.0.2.1", "https://app.example.com", decision.Valid, "basic"},
		{"origin refused", "browser", "GET", "/api/forms/1", "192.0.2.1", "https://evil.example", decision.OriginNotAllowed, ""},
		{"scope missing", "noscope", "GET", "/api/forms/1", "192.0.2.1", "", decision.InsufficientScope, ""},
		{"admin needs admin scope", "basic", "GET", "/admin/users", "192.0.2.1", "", decision.InsufficientScope, ""},
		{"admin with scope, strictest tier", "admin", "GET", "/admin/users", "192.0.2.1", "", decision.Valid, "free"},
		{"public needs no key", "", "GET", "/public/x", "192.0.2.1", "", decision.Valid, "free"},
		{"internal: nothing applies", "", "GET", "/internal/metrics", "192.0.2.1", "", decision.Valid, ""},
		{"default route is protected", "", "GET", "/unlisted", "192.0.2.1", "", decision.MissingKey, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := w.decide(c.key, c.method, c.path, c.ip, c.origin)
			if d.Code != c.want || d.Tier != c.wantTier {
				t.Fatalf("code %v tier %q, want %v %q", d.Code, d.Tier, c.want, c.wantTier)
			}
			if d.Allowed() != (c.want == decision.Valid) {
				t.Fatalf("Allowed() = %v", d.Allowed())
			}
			if c.want == decision.Valid && c.key != "" && d.Identity == nil {
				t.Fatal("no identity on a valid keyed request")
			}
		})
	}
}

func TestDenialsAreAudited(t *testing.T) {
	w := newWorld(t)
	w.decide("ipbound", "GET", "/api/forms/1", "192.0.2.1", "")
	w.decide("browser", "GET", "/api/forms/1", "192.0.2.1", "https://evil.example")
	w.decide("noscope", "GET", "/api/forms/1", "192.0.2.1", "")
	if err := w.keys.Flush(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]keys.EventType{"ipbound": keys.EventIPDenied, "browser": keys.EventOriginDenied, "noscope": keys.EventScopeDenied} {
		evs, _, _ := w.keys.Events(w.ids[name], "", 5)
		if len(evs) == 0 || evs[0].Type != want {
			t.Errorf("%s: events %+v, want %s first", name, evs, want)
		}
	}
}

func TestLimitsPerPreset(t *testing.T) {
	w := newWorld(t)
	count := func(key, path, ip string, n int) (passed int, last enforce.Decision) {
		for range n {
			last = w.decide(key, "GET", path, ip, "")
			if last.Allowed() {
				passed++
			}
		}
		return
	}
	// basic: burst 5 a minute.
	if n, last := count("basic", "/api/forms/1", "192.0.2.1", 8); n != 5 || last.Code != decision.RateLimited || last.Limit.RetryAfter <= 0 {
		t.Fatalf("basic: %d passed, last %v", n, last.Code)
	}
	// public: per client IP with the free tier (burst 3); another IP has its own.
	if n, _ := count("", "/public/a", "198.51.100.1", 5); n != 3 {
		t.Fatalf("public ip 1: %d passed, want 3", n)
	}
	if n, _ := count("", "/public/a", "198.51.100.2", 5); n != 3 {
		t.Fatalf("public ip 2: %d passed, want 3", n)
	}
	// IPv6: one bucket per /64, whichever of its addresses is used.
	passed := 0
	for i := range 5 {
		if d := w.decide("", "GET", "/public/a", "2001:db8:1:2::"+strconv.Itoa(i+1), ""); d.Allowed() {
			passed++
		}
	}
	if passed != 3 {
		t.Fatalf("public, five addresses of one /64: %d passed, want 3", passed)
	}
	if n, _ := count("", "/public/a", "2001:db8:1:3::1", 5); n != 3 {
		t.Fatalf("public, the next /64: %d passed, want 3", n)
	}
	// high_volume: only the route's 2 a minute, not the tier.
	if n, last := count("noscope", "/bulk/x", "192.0.2.1", 4); n != 2 || last.Limit.NumBuckets != 1 {
		t.Fatalf("high_volume: %d passed, %d buckets", n, last.Limit.NumBuckets)
	}
	// internal: never limited.
	if n, _ := count("", "/internal/x", "192.0.2.1", 50); n != 50 {
		t.Fatalf("internal: %d passed", n)
	}
	// cost 4 against a burst of 5: one passes, the next is denied and takes nothing.
	w2 := newWorld(t)
	d := w2.decide("basic", "GET", "/expensive/x", "192.0.2.1", "")
	if !d.Allowed() {
		t.Fatal("first expensive request denied")
	}
	d = w2.decide("basic", "GET", "/expensive/x", "192.0.2.1", "")
	if d.Code != decision.RateLimited {
		t.Fatalf("second expensive: %v", d.Code)
	}
	if d = w2.decide("basic", "GET", "/api/forms/1", "192.0.2.1", ""); !d.Allowed() {
		t.Fatal("the denied expensive request took tokens")
	}
}

func TestQueryKeyOnlyWhereAllowed(t *testing.T) {
	w := newWorld(t)
	f := enforce.Facts{QueryKey: w.secret["basic"], Method: "GET", Path: "/export/csv", ClientIP: netip.MustParseAddr("192.0.2.1")}
	if d := w.engine.Decide(w.at(), &f); !d.Allowed() || !d.UsedQueryKey {
		t.Fatalf("export with ?api_key=: %v", d.Code)
	}
	f.Path = "/api/forms/1"
	if d := w.engine.Decide(w.at(), &f); d.Code != decision.MissingKey {
		t.Fatalf("forms with ?api_key=: %v, want MISSING_KEY", d.Code)
	}
}

// BenchmarkDecide: the whole decision for a valid key (goal ≤ 2 µs).
func BenchmarkDecide(b *testing.B) {
	benchDecide(b, newWorld(b))
}

// benchDecide runs the decision for w's enterprise key, serially and in
// parallel.
func benchDecide(b *testing.B, w *world) {
	// A tier nobody reaches: enterprise key with a generous route.
	f := enforce.Facts{HeaderKey: w.secret["admin"], Method: "GET", Path: "/api/forms/12", ClientIP: netip.MustParseAddr("192.0.2.1")}
	for range 50 {
		w.engine.Decide(w.at(), &f)
	}
	if d := w.engine.Decide(w.at(), &f); !d.Allowed() {
		b.Fatalf("the benchmark's key is refused: %v", d.Code)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f := f
			w.engine.Decide(t0, &f)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			f := f
			for pb.Next() {
				w.engine.Decide(t0, &f)
			}
		})
	})
}

// BenchmarkDecidePublic: a public route, limited per client network. The
// subject's string is the one allocation.
func BenchmarkDecidePublic(b *testing.B) {
	for _, ip := range []string{"198.51.100.7", "2001:db8:85a3::8a2e:370:7334"} {
		b.Run(ip, func(b *testing.B) {
			w := newWorld(b)
			f := enforce.Facts{Method: "GET", Path: "/public/a", ClientIP: netip.MustParseAddr(ip)}
			b.ReportAllocs()
			for b.Loop() {
				f := f
				w.engine.Decide(t0, &f)
			}
		})
	}
}
