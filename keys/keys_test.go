package keys_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// clock is a settable time source for tests.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

var testPolicy = keys.Policy{
	Tiers:       []string{"free", "basic", "premium", "enterprise"},
	DefaultTier: "free",
	Scopes:      []string{"forms:read", "forms:write", "guests:read", "admin"},
	GracePeriod: 24 * time.Hour,
}

func newService(t testing.TB, st *store.Store, clk *clock) *keys.Service {
	t.Helper()
	svc, err := keys.New(keys.Options{
		Store:  st,
		Secret: []byte("test-secret-test-secret-test-secret"),
		Prefix: "wsk",
		Policy: testPolicy,
		Now:    clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

func mustCreate(t testing.TB, svc *keys.Service, p keys.CreateParams) (keys.Key, string) {
	t.Helper()
	k, secret, err := svc.Create(p, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return k, secret
}

func TestCreateAndVerify(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	k, secret := mustCreate(t, svc, keys.CreateParams{Name: "planner app", OwnerID: "org_1", Tier: "basic",
		Scopes: []string{"forms:read", "guests:read", "forms:read"}, Meta: map[string]string{"plan": "basic"}})

	if !strings.HasPrefix(secret, "wsk_") || len(secret) != len("wsk_")+36 {
		t.Fatalf("secret %q has the wrong shape", secret)
	}
	if k.Start != secret[:len("wsk_")+6] || k.Status != keys.StatusActive || k.Tier != "basic" {
		t.Fatalf("record %+v", k)
	}
	if want := []string{"forms:read", "guests:read"}; strings.Join(k.Scopes, ",") != strings.Join(want, ",") {
		t.Fatalf("scopes %v, want %v (deduplicated, sorted)", k.Scopes, want)
	}
	for range 3 { // the first from disk, then from the cache
		id, err := svc.Verify(clk.Now(), secret)
		if err != nil {
			t.Fatal(err)
		}
		if id.ID != k.ID || id.OwnerID != "org_1" || id.Tier != "basic" || id.ScopesHeader != "forms:read,guests:read" {
			t.Fatalf("identity %+v", id)
		}
	}
}

func TestChecksumRejectsEveryOneCharacterChange(t *testing.T) {
	clk := newClock(t0)
	st, err := store.Open(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, st, clk)
	_, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	// With the store closed, any lookup would fail with store.ErrClosed:
	// getting ErrMalformed proves the checksum rejected the key first.
	st.Close()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for i := len("wsk_"); i < len(secret); i++ {
		for _, c := range []byte(alphabet) {
			if c == secret[i] {
				continue
			}
			changed := secret[:i] + string(c) + secret[i+1:]
			if _, err := svc.Verify(clk.Now(), changed); !errors.Is(err, keys.ErrMalformed) {
				t.Fatalf("position %d -> %q: got %v, want ErrMalformed", i, c, err)
			}
		}
	}
	for _, junk := range []string{"", "wsk_", "Bearer x", secret + "x", secret[:len(secret)-1], strings.ToUpper(secret[:3]) + secret[3:]} {
		if _, err := svc.Verify(clk.Now(), junk); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("%q: got %v, want ErrMalformed", junk, err)
		}
	}
}

func TestUnknownKeyCostsNoDiskRead(t *testing.T) {
	clk := newClock(t0)
	st, err := store.Open(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, st, clk)
	mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	// Another service with another secret makes well-formed keys this one
	// has never stored.
	other := newService(t, storetest.MustOpen(t), clk)
	_, foreign := mustCreate(t, other, keys.CreateParams{Tier: "free"})
	st.Close()
	if _, err := svc.Verify(clk.Now(), foreign); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound without touching the (closed) store", err)
	}
}

func TestRevokeTakesEffectForTheNextVerification(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	k, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	if _, err := svc.Verify(clk.Now(), secret); err != nil { // now cached
		t.Fatal(err)
	}
	rk, err := svc.Revoke(k.ID, "admin", "leaked")
	if err != nil {
		t.Fatal(err)
	}
	if rk.Status != keys.StatusRevoked || rk.RevokedAt == nil {
		t.Fatalf("revoked record %+v", rk)
	}
	id, err := svc.Verify(clk.Now(), secret)
	if !errors.Is(err, keys.ErrRevoked) || id == nil || id.ID != k.ID {
		t.Fatalf("got %v %v, want ErrRevoked with the identity", id, err)
	}
	if _, err := svc.Revoke(k.ID, "admin", ""); !errors.Is(err, keys.ErrAlreadyRevoked) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, _, err := svc.Rotate(k.ID, nil, "admin"); !errors.Is(err, keys.ErrAlreadyRevoked) {
		t.Fatalf("rotate revoked: %v", err)
	}
}

// Verifications racing a revoke: once Revoke has returned, no verification
// that starts afterwards may succeed.
func TestRevokeUnderConcurrentVerification(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	for round := range 20 {
		k, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
		var revoked atomic.Bool
		var wrong atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 300 {
					after := revoked.Load()
					_, err := svc.Verify(clk.Now(), secret)
					if after && err == nil {
						wrong.Add(1)
					}
				}
			}()
		}
		if _, err := svc.Revoke(k.ID, "admin", ""); err != nil {
			t.Fatal(err)
		}
		revoked.Store(true)
		wg.Wait()
		if n := wrong.Load(); n > 0 {
			t.Fatalf("round %d: %d verifications succeeded after Revoke returned", round, n)
		}
	}
}

func TestPatchTakesEffectForTheNextVerification(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	k, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free", Scopes: []string{"forms:read"}})
	if _, err := svc.Verify(clk.Now(), secret); err != nil {
		t.Fatal(err)
	}
	scopes := []string{"forms:read", "forms:write"}
	tier := "premium"
	if _, err := svc.Update(k.ID, keys.Patch{Scopes: &scopes, Tier: &tier}, "admin"); err != nil {
		t.Fatal(err)
	}
	id, err := svc.Verify(clk.Now(), secret)
	if err != nil || id.Tier != "premium" || !id.HasScopes([]string{"forms:write"}) {
		t.Fatalf("after patch: %+v %v", id, err)
	}
}

func TestRotationGrace(t *testing.T) {
	hour := time.Hour
	zero := time.Duration(0)
	cases := []struct {
		name        string
		grace       *time.Duration
		oldAt       time.Duration // when the old secret is tried, after the rotation
		wantOld     error
		wantGraceAt time.Duration // expected grace_until - rotation time; -1: none
	}{
		{"default grace, inside", nil, 23 * time.Hour, nil, 24 * time.Hour},
		{"default grace, after", nil, 24 * time.Hour, keys.ErrExpired, 24 * time.Hour},
		{"one hour, inside", &hour, 59 * time.Minute, nil, time.Hour},
		{"one hour, after", &hour, 61 * time.Minute, keys.ErrExpired, time.Hour},
		{"zero grace", &zero, 0, keys.ErrNotFound, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(t0)
			svc := newService(t, storetest.MustOpen(t), clk)
			k, oldSecret := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
			if _, err := svc.Verify(clk.Now(), oldSecret); err != nil {
				t.Fatal(err)
			}
			rotated, newSecret, err := svc.Rotate(k.ID, tc.grace, "admin")
			if err != nil {
				t.Fatal(err)
			}
			if rotated.ID != k.ID || newSecret == oldSecret || rotated.Start == k.Start || rotated.RotatedAt == nil {
				t.Fatalf("rotated record %+v", rotated)
			}
			if tc.wantGraceAt < 0 && rotated.GraceUntil != nil {
				t.Fatalf("grace_until %v, want none", rotated.GraceUntil)
			}
			if tc.wantGraceAt >= 0 && (rotated.GraceUntil == nil || rotated.GraceUntil.Sub(t0) != tc.wantGraceAt) {
				t.Fatalf("grace_until %v, want t0+%s", rotated.GraceUntil, tc.wantGraceAt)
			}
			clk.Add(tc.oldAt)
			if id, err := svc.Verify(clk.Now(), newSecret); err != nil || id.ID != k.ID {
				t.Fatalf("new secret: %v", err)
			}
			if _, err := svc.Verify(clk.Now(), oldSecret); !errors.Is(err, tc.wantOld) && !(tc.wantOld == nil && err == nil) {
				t.Fatalf("old secret: got %v, want %v", err, tc.wantOld)
			}
		})
	}
}

func TestSecondRotationEndsTheFirstSecret(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	k, first := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	_, second, _ := svc.Rotate(k.ID, nil, "admin")
	_, third, _ := svc.Rotate(k.ID, nil, "admin")
	for secret, want := range map[string]error{first: keys.ErrNotFound, second: nil, third: nil} {
		if _, err := svc.Verify(clk.Now(), secret); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("got %v, want %v", err, want)
		}
	}
}

func TestExpiry(t *testing.T) {
	clk := newClock(t0)
	st := storetest.MustOpen(t)
	svc := newService(t, st, clk)
	exp := t0.Add(time.Hour)
	k, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free", ExpiresAt: &exp})
	steps := []struct {
		at   time.Duration
		want error
	}{{0, nil}, {59 * time.Minute, nil}, {time.Hour, keys.ErrExpired}, {48 * time.Hour, keys.ErrExpired}}
	for _, s := range steps {
		clk.Set(t0.Add(s.at))
		if _, err := svc.Verify(clk.Now(), secret); !errors.Is(err, s.want) && !(s.want == nil && err == nil) {
			t.Fatalf("at +%s: got %v, want %v", s.at, err, s.want)
		}
	}
	got, _ := svc.Get(k.ID)
	if got.Status != keys.StatusExpired {
		t.Fatalf("status %s, want expired", got.Status)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	evs, _, _ := svc.Events(k.ID, "", 10)
	if len(evs) != 2 || evs[0].Type != keys.EventExpired {
		t.Fatalf("events %+v, want expired (once) then created", evs)
	}
	// Presented again after the event was written: no second event, even
	// from a fresh cache.
	svc2 := newService(t, st, clk)
	for _, s := range []*keys.Service{svc, svc2} {
		if _, err := s.Verify(clk.Now(), secret); !errors.Is(err, keys.ErrExpired) {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _, _ := svc.Events(k.ID, "", 10); len(evs) != 2 {
		t.Fatalf("expired recorded again: %+v", evs)
	}
	past := t0
	if _, _, err := svc.Create(keys.CreateParams{Tier: "free", ExpiresAt: &past}, "admin"); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("creating an already expired key: %v", err)
	}
}

func TestAuditEvents(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	k, _ := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	clk.Add(time.Second)
	name := "renamed"
	if _, err := svc.Update(k.ID, keys.Patch{Name: &name}, "alice"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	svc.Rotate(k.ID, nil, "bob")
	clk.Add(time.Second)
	for range 5 {
		svc.RecordDenial(clk.Now(), k.ID, keys.EventIPDenied, "203.0.113.9")
	}
	svc.RecordDenial(clk.Now(), k.ID, keys.EventScopeDenied, "forms:write")
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	svc.Revoke(k.ID, "carol", "customer left")

	evs, next, err := svc.Events(k.ID, "", 3)
	if err != nil {
		t.Fatal(err)
	}
	evs2, next2, err := svc.Events(k.ID, next, 10)
	if err != nil || next == "" || next2 != "" {
		t.Fatalf("paging: %v %q %q", err, next, next2)
	}
	all := append(evs, evs2...)
	var got []string
	for _, e := range all {
		got = append(got, string(e.Type)+"/"+e.Actor)
	}
	// ip_denied and scope_denied share a timestamp; their order is by write.
	joined := strings.Join(got, " ")
	for _, want := range []string{"revoked/carol", "ip_denied/system", "scope_denied/system", "rotated/bob", "updated/alice", "created/admin"} {
		if !strings.Contains(joined, want) {
			t.Errorf("events %s lack %s", joined, want)
		}
	}
	if got[0] != "revoked/carol" || got[len(got)-1] != "created/admin" || len(got) != 6 {
		t.Fatalf("events newest first: %v", got)
	}
	for _, e := range all {
		if e.Type == keys.EventIPDenied && e.Count != 5 {
			t.Errorf("ip_denied count %d, want 5 aggregated", e.Count)
		}
	}
	if _, _, err := svc.Events("key_nope", "", 10); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("events of a missing key: %v", err)
	}
	if _, _, err := svc.Events(k.ID, "garbage!", 10); !errors.Is(err, keys.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestLastUsedIsWrittenBehind(t *testing.T) {
	clk := newClock(t0)
	st := storetest.MustOpen(t)
	svc := newService(t, st, clk)
	k, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	for range 100 {
		clk.Add(10 * time.Millisecond)
		if _, err := svc.Verify(clk.Now(), secret); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() *time.Time {
		var rec struct {
			LastUsedAt *time.Time `json:"last_used_at"`
		}
		_ = st.View(func(tx *store.Tx) error {
			return jsonUnmarshal(tx.Bucket(store.BucketKeys).Get([]byte(k.ID)), &rec)
		})
		return rec.LastUsedAt
	}
	if got := stored(); got != nil {
		t.Fatalf("last_used_at written on the request path: %v", got)
	}
	if got, _ := svc.Get(k.ID); got.LastUsedAt == nil {
		t.Fatal("Get does not show the pending last_used_at")
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got == nil || got.Before(t0) || got.After(clk.Now()) {
		t.Fatalf("last_used_at after flush: %v", got)
	}
}

func TestSecretNeverStored(t *testing.T) {
	clk := newClock(t0)
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, st, clk)
	var secrets []string
	for range 20 {
		k, s := mustCreate(t, svc, keys.CreateParams{Tier: "free", Name: "n"})
		secrets = append(secrets, s)
		_, s2, err := svc.Rotate(k.ID, nil, "admin")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s2)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(dir + "/" + store.FileName)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		body := s[len("wsk_"):]
		// The record keeps "start" (prefix + 6 characters); nothing longer
		// of the secret may appear.
		for _, part := range []string{s, body, body[6:], body[:12]} {
			if bytes.Contains(file, []byte(part)) {
				t.Fatalf("data file contains part of a secret: %q", part)
			}
		}
	}
}

func TestRestartKeepsKeys(t *testing.T) {
	clk := newClock(t0)
	dir := t.TempDir()
	st, _ := store.Open(dir, store.Options{NoSync: true})
	svc := newService(t, st, clk)
	k, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	svc.Close()
	st.Close()

	st2, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	svc2 := newService(t, st2, clk)
	if id, err := svc2.Verify(clk.Now(), secret); err != nil || id.ID != k.ID {
		t.Fatalf("after restart: %v", err)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	var ids []string
	for i := range 25 {
		clk.Add(time.Millisecond)
		tier := []string{"free", "basic"}[i%2]
		owner := []string{"org_a", "org_b", "org_c"}[i%3]
		k, _ := mustCreate(t, svc, keys.CreateParams{Tier: tier, OwnerID: owner})
		ids = append(ids, k.ID)
	}
	svc.Revoke(ids[0], "admin", "")

	var all []string
	cursor := ""
	for page := 0; ; page++ {
		got, next, err := svc.List(keys.Filter{Cursor: cursor, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range got {
			all = append(all, k.ID)
		}
		if next == "" {
			break
		}
		cursor = next
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if strings.Join(all, ",") != strings.Join(ids, ",") {
		t.Fatalf("paged list is not every key in creation order:\n%v\n%v", all, ids)
	}
	cases := []struct {
		f    keys.Filter
		want int
	}{
		{keys.Filter{Tier: "free"}, 13},
		{keys.Filter{OwnerID: "org_b"}, 8},
		{keys.Filter{Tier: "basic", OwnerID: "org_a"}, 4},
		{keys.Filter{Status: keys.StatusRevoked}, 1},
		{keys.Filter{Status: keys.StatusActive}, 24},
	}
	for _, tc := range cases {
		got, _, err := svc.List(tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%+v: %d keys (%v), want %d", tc.f, len(got), err, tc.want)
		}
	}
	if _, _, err := svc.List(keys.Filter{Cursor: "!!"}); !errors.Is(err, keys.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestCreateValidation(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	cases := map[string]keys.CreateParams{
		"unknown tier":    {Tier: "gold"},
		"unknown scope":   {Tier: "free", Scopes: []string{"everything"}},
		"bad cidr":        {Tier: "free", AllowedIPs: []string{"10.0.0.0/33"}},
		"bad origin":      {Tier: "free", AllowedOrigins: []string{"example.com"}},
		"origin path":     {Tier: "free", AllowedOrigins: []string{"https://example.com/app"}},
		"long name":       {Tier: "free", Name: strings.Repeat("x", 201)},
		"empty meta key":  {Tier: "free", Meta: map[string]string{"": "v"}},
		"owner with CRLF": {Tier: "free", OwnerID: "org\r\nX-Injected: 1"},
		"name with NUL":   {Tier: "free", Name: "a\x00b"},
	}
	for name, p := range cases {
		if _, _, err := svc.Create(p, "admin"); !errors.Is(err, keys.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	k, _ := mustCreate(t, svc, keys.CreateParams{})
	if k.Tier != "free" {
		t.Errorf("default tier %q, want free", k.Tier)
	}
}

func TestIdentityChecks(t *testing.T) {
	clk := newClock(t0)
	svc := newService(t, storetest.MustOpen(t), clk)
	_, secret := mustCreate(t, svc, keys.CreateParams{Tier: "free",
		Scopes:         []string{"forms:read", "guests:read"},
		AllowedIPs:     []string{"10.1.0.0/16", "2001:db8::/32", "192.0.2.7"},
		AllowedOrigins: []string{"https://app.example.com", "https://*.wedding.test"}})
	id, err := svc.Verify(clk.Now(), secret)
	if err != nil {
		t.Fatal(err)
	}
	ips := []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true}, {"10.2.0.1", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"2001:db8::1", true}, {"2001:db9::1", false}, {"::ffff:10.1.9.9", true},
	}
	for _, c := range ips {
		if got := id.AllowsIP(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("AllowsIP(%s) = %v, want %v", c.ip, got, c.want)
		}
	}
	origins := []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true}, {"https://APP.example.com", true}, {"http://app.example.com", false},
		{"https://evil.example.com", false}, {"https://a.wedding.test", true}, {"https://wedding.test", false},
		{"https://a.wedding.test.evil", false}, {"", false},
	}
	for _, c := range origins {
		if got := id.AllowsOrigin(c.origin); got != c.want {
			t.Errorf("AllowsOrigin(%q) = %v, want %v", c.origin, got, c.want)
		}
	}
	scopes := []struct {
		need []string
		want bool
	}{{nil, true}, {[]string{"forms:read"}, true}, {[]string{"forms:read", "guests:read"}, true}, {[]string{"forms:write"}, false}}
	for _, c := range scopes {
		if got := id.HasScopes(c.need); got != c.want {
			t.Errorf("HasScopes(%v) = %v, want %v", c.need, got, c.want)
		}
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	dir := t.TempDir()
	s1, created, err := keys.LoadOrCreateSecret(dir)
	if err != nil || !created || len(s1) < 32 {
		t.Fatalf("first: %q %v %v", s1, created, err)
	}
	s2, created, err := keys.LoadOrCreateSecret(dir)
	if err != nil || created || !bytes.Equal(s1, s2) {
		t.Fatalf("second: %q %v %v", s2, created, err)
	}
	fi, _ := os.Stat(dir + "/" + keys.SecretFileName)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode())
	}
	os.WriteFile(dir+"/"+keys.SecretFileName, []byte("short\n"), 0o600)
	if _, _, err := keys.LoadOrCreateSecret(dir); err == nil {
		t.Fatal("accepted a short secret")
	}
}

func TestNewRequiresSecret(t *testing.T) {
	if _, err := keys.New(keys.Options{Store: storetest.MustOpen(t)}); !errors.Is(err, keys.ErrNoSecret) {
		t.Fatalf("got %v", err)
	}
}

func TestWrongSecretIsRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := newClock(t0)
	svc := newService(t, st, clk) // records the secret's check value
	mustCreate(t, svc, keys.CreateParams{Tier: "free"})
	_, err = keys.New(keys.Options{Store: st, Secret: []byte("another-secret-entirely-xyz"), Policy: testPolicy})
	if !errors.Is(err, keys.ErrSecretMismatch) || !strings.Contains(err.Error(), "APIWARDEN_KEY_SECRET") {
		t.Fatalf("got %v, want ErrSecretMismatch saying what to do", err)
	}
	again, err := keys.New(keys.Options{Store: st, Secret: []byte("test-secret-test-secret-test-secret"), Policy: testPolicy})
	if err != nil {
		t.Fatalf("the right secret: %v", err)
	}
	again.Close()
}

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := keys.ResolveSecret("fifteen-chars-x", dir); !errors.Is(err, keys.ErrSecretTooShort) {
		t.Fatalf("a 15-character secret: got %v, want ErrSecretTooShort", err)
	}
	got, created, err := keys.ResolveSecret("sixteen-chars-xy", dir)
	if err != nil || created || string(got) != "sixteen-chars-xy" {
		t.Fatalf("configured: %q %v %v", got, created, err)
	}
	if _, err := os.Stat(dir + "/" + keys.SecretFileName); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a configured secret wrote %s: %v", keys.SecretFileName, err)
	}
	generated, created, err := keys.ResolveSecret("", dir)
	if err != nil || !created || len(generated) < 32 {
		t.Fatalf("generated: %q %v %v", generated, created, err)
	}
	again, created, err := keys.ResolveSecret("", dir)
	if err != nil || created || !bytes.Equal(again, generated) {
		t.Fatalf("kept: %q %v %v", again, created, err)
	}
}
