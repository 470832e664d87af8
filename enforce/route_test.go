package enforce

import (
	"net/netip"
	"testing"
)

func TestRouteMatching(t *testing.T) {
	routes, err := NewRoutes([]Route{
		{Pattern: "/api/forms/*", Methods: []string{"get"}, Preset: Protected},
		{Pattern: "/api/forms/*", Preset: Admin},
		{Pattern: "/api/guests/:id", Preset: Public},
		{Pattern: "/api/guests/:id/rsvp", Methods: []string{"POST", "PUT"}, Preset: HighVolume},
		{Pattern: "/health", Preset: Internal},
		{Pattern: "/", Preset: Internal},
		{Pattern: "/static/*", Preset: Internal},
	}, Route{Preset: Protected})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, want string
	}{
		{"GET", "/api/forms", "/api/forms/*"},
		{"GET", "/api/forms/", "/api/forms/*"},
		{"GET", "/api/forms/12/fields", "/api/forms/*"},
		{"POST", "/api/forms/12", "/api/forms/*"}, // second entry: any method
		{"GET", "/api/formsx", "*"},
		{"GET", "/api/guests/7", "/api/guests/:id"},
		{"GET", "/api/guests/7/", "/api/guests/:id"},
		{"GET", "/api/guests", "*"},
		{"GET", "/api/guests/7/photos", "*"},
		{"POST", "/api/guests/7/rsvp", "/api/guests/:id/rsvp"},
		{"GET", "/api/guests/7/rsvp", "*"},
		{"GET", "/health", "/health"},
		{"GET", "/healthz", "*"},
		{"GET", "/", "/"},
		{"GET", "/static", "/static/*"},
		{"GET", "/static/app.js", "/static/*"},
	}
	for _, c := range cases {
		if got := routes.Match(c.method, c.path).Pattern; got != c.want {
			t.Errorf("%s %s matched %q, want %q", c.method, c.path, got, c.want)
		}
	}
	if r := routes.Match("GET", "/api/forms/1"); r.Preset != Protected {
		t.Errorf("GET forms preset %v", r.Preset)
	}
	if r := routes.Match("DELETE", "/api/forms/1"); r.Preset != Admin {
		t.Errorf("DELETE forms preset %v", r.Preset)
	}
	for _, bad := range []string{"api/x", "/a/*/b", "/a/b*"} {
		if _, err := NewRoutes([]Route{{Pattern: bad}}, Route{}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

// HEAD matches a GET route (and only where GET does), so it meets that
// route's limits instead of falling through to a looser one.
func TestHeadMatchesWhereGetDoes(t *testing.T) {
	routes, err := NewRoutes([]Route{
		{Pattern: "/reports/*", Methods: []string{"GET"}, Preset: Protected, RequestsPerMinute: 3},
		{Pattern: "/forms/*", Methods: []string{"POST"}, Preset: Admin},
		{Pattern: "/head-only", Methods: []string{"HEAD"}, Preset: Public},
		{Pattern: "/*", Preset: Internal},
	}, Route{Preset: Protected})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ method, path, want string }{
		{"HEAD", "/reports/1", "/reports/*"},
		{"GET", "/reports/1", "/reports/*"},
		{"HEAD", "/forms/1", "/*"},
		{"HEAD", "/head-only", "/head-only"},
		{"GET", "/head-only", "/*"}, // HEAD does not include GET
	}
	for _, c := range cases {
		if got := routes.Match(c.method, c.path).Pattern; got != c.want {
			t.Errorf("%s %s matched %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// IgnoreCase matches literal segments in any case; parameters and the
// rest are taken as they are, and the table it was made from is unchanged.
func TestRoutesIgnoreCase(t *testing.T) {
	routes, err := NewRoutes([]Route{
		{Pattern: "/api/admin/*", Preset: Admin},
		{Pattern: "/api/Guests/:id", Preset: Public},
	}, Route{Preset: Protected})
	if err != nil {
		t.Fatal(err)
	}
	folded := routes.IgnoreCase()
	cases := []struct{ path, exact, folded string }{
		{"/api/admin/users", "/api/admin/*", "/api/admin/*"},
		{"/API/Admin/users", "*", "/api/admin/*"},
		{"/api/guests/AbC", "*", "/api/Guests/:id"},
		{"/api/Guests/AbC", "/api/Guests/:id", "/api/Guests/:id"},
		{"/api/admins", "*", "*"},
	}
	for _, c := range cases {
		if got := routes.Match("GET", c.path).Pattern; got != c.exact {
			t.Errorf("exact: %s matched %q, want %q", c.path, got, c.exact)
		}
		if got := folded.Match("GET", c.path).Pattern; got != c.folded {
			t.Errorf("ignoring case: %s matched %q, want %q", c.path, got, c.folded)
		}
	}
}

func TestCleanPath(t *testing.T) {
	cases := map[string]string{
		"":                      "/",
		"/":                     "/",
		"/api/forms":            "/api/forms",
		"/api/forms/":           "/api/forms/",
		"/api//forms":           "/api/forms",
		"/api/./forms":          "/api/forms",
		"/api/forms/../admin":   "/api/admin",
		"/../../etc/passwd":     "/etc/passwd",
		"/api/forms/..":         "/api",
		"/a/b/.":                "/a/b",
		"relative/path":         "/relative/path",
		"/api/forms/..%2fadmin": "/api/forms/..%2fadmin", // decoding is the server's job, before this
	}
	for in, want := range cases {
		if got := CleanPath(in); got != want {
			t.Errorf("CleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := TrustedProxies{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer: header ignored", "203.0.113.5", []string{"1.1.1.1"}, "203.0.113.5"},
		{"trusted peer, one hop", "127.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"right-most untrusted hop wins", "127.0.0.1", []string{"6.6.6.6, 198.51.100.7, 10.1.2.3"}, "198.51.100.7"},
		{"several headers", "10.0.0.1", []string{"6.6.6.6", "198.51.100.7", "10.9.9.9"}, "198.51.100.7"},
		{"all trusted: left-most", "127.0.0.1", []string{"10.0.0.2, 10.0.0.3"}, "10.0.0.2"},
		{"no header", "127.0.0.1", nil, "127.0.0.1"},
		{"garbage hop stops the walk", "127.0.0.1", []string{"198.51.100.7, not-an-ip"}, "127.0.0.1"},
		{"ports and brackets", "127.0.0.1", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"ipv4 with port", "::1", []string{"198.51.100.7:5555"}, "198.51.100.7"},
		{"mapped peer", "::ffff:127.0.0.1", []string{"198.51.100.9"}, "198.51.100.9"},
	}
	for _, c := range cases {
		if got := trusted.ClientIP(netip.MustParseAddr(c.peer), c.xff); got.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	var list []Route
	for _, p := range []string{"/api/forms/*", "/api/guests/:id", "/api/timeline/*", "/api/photos/upload", "/api/clients/:id/notes"} {
		list = append(list, Route{Pattern: p})
	}
	routes, _ := NewRoutes(list, Route{})
	b.ReportAllocs()
	for b.Loop() {
		routes.Match("GET", "/api/clients/42/notes")
	}
}
