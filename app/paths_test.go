package app_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// pathsEnv is the app in proxy mode in front of an upstream that records
// the request URIs it was sent.
type pathsEnv struct {
	app      *app.App
	mu       sync.Mutex
	received []string
}

func (e *pathsEnv) upstreamSaw() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.received...)
}

// startPathsApp serves /api/admin/* (admin preset), /api/public/*
// (public) and everything else as protected, before mutate's changes.
func startPathsApp(t *testing.T, mutate func(*config.Config)) *pathsEnv {
	t.Helper()
	env := &pathsEnv{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.mu.Lock()
		env.received = append(env.received, r.Method+" "+r.RequestURI)
		env.mu.Unlock()
		io.WriteString(w, "served by the app")
	}))
	t.Cleanup(up.Close)
	env.app, _ = startApp(t, func(c *config.Config) {
		c.Proxy.Upstream = up.URL
		c.Routes = []config.Route{
			{Path: "/api/admin/*", Preset: "admin"},
			{Path: "/api/public/*", Preset: "public"},
		}
		if mutate != nil {
			mutate(c)
		}
	})
	return env
}

// createKey makes a key through the admin API and returns its secret.
func (e *pathsEnv) createKey(t *testing.T, params string) string {
	t.Helper()
	return edgetest.CreateKey(t, nil, "http://"+e.app.AdminAddr(), "tok", params).Secret
}

// rawGet sends a request line exactly as written (no client library
// cleans or escapes it) and returns the status and the error code of the
// answer ("" when the body is not an error body).
func rawGet(t *testing.T, addr, method, target string, headers map[string]string) (status int, code string) {
	t.Helper()
	conn := edgetest.Dial(t, addr)
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n")
	for k, v := range headers {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, errorCode(resp.Body)
}

func errorCode(body io.Reader) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.NewDecoder(body).Decode(&e)
	return e.Error.Code
}

// A path an upstream may read differently from apiwarden is refused with
// 400 on the proxy, whether or not a key came with it, and never reaches
// the upstream: Tomcat and Spring drop ";…" from a segment, IIS reads "\"
// as "/", and an encoded "/", "\", ";", NUL or ".." is decoded by some
// upstreams and not by others.
func TestProxyRefusesAmbiguousPaths(t *testing.T) {
	env := startPathsApp(t, nil)
	noAdmin := env.createKey(t, `{"name":"no admin","owner_id":"org_paths","tier":"basic"}`)
	withKey := map[string]string{"X-API-Key": noAdmin}
	cases := []struct {
		target  string
		headers map[string]string
	}{
		{"/api/admin;x=1/users", withKey},
		{"/api;/admin/users", withKey},
		{"/api/public/..\\admin\\users", nil},
		{"/api/public/../admin/users", nil},
		{"/api/public/%2e%2e/admin/users", nil},
		{"/api/public/.%2E/admin/users", nil},
		{"/api/public/a%2Fb", nil},
		{"/api/public/a%2fb", nil},
		{"/api/public/a%5Cb", nil},
		{"/api/public/a%5cb", nil},
		{"/api/public/a%3Bb", nil},
		{"/api/public/a%3bb", nil},
		{"/api/public/a%00b", nil},
	}
	for _, c := range cases {
		status, code := rawGet(t, env.app.Addr(), "GET", c.target, c.headers)
		if status != http.StatusBadRequest || code != "INVALID_PATH" {
			t.Errorf("GET %s: %d %q, want 400 INVALID_PATH", c.target, status, code)
		}
	}
	if saw := env.upstreamSaw(); len(saw) != 0 {
		t.Errorf("the upstream was sent %q", saw)
	}

	// Plain paths still pass, and reach the upstream as sent.
	if status, code := rawGet(t, env.app.Addr(), "GET", "/api/public/a-b.c~d?q=%2F", nil); status != 200 {
		t.Errorf("a plain public path: %d %s", status, code)
	}
	if saw := env.upstreamSaw(); len(saw) != 1 || saw[0] != "GET /api/public/a-b.c~d?q=%2F" {
		t.Errorf("the upstream saw %q", saw)
	}
}

// /v1/authorize and /v1/check apply the same rules to the path they are
// asked about.
func TestAuthorizeAndCheckRefuseAmbiguousPaths(t *testing.T) {
	for _, edge := range []string{"", config.EdgeFastHTTP} {
		name := "net/http, admin listener of proxy mode"
		if edge != "" {
			name = edge + ", listen without a proxy"
		}
		t.Run(name, func(t *testing.T) { testAuthorizeAndCheckRefuseAmbiguousPaths(t, edge) })
	}
}

func testAuthorizeAndCheckRefuseAmbiguousPaths(t *testing.T, edge string) {
	env := startPathsApp(t, func(c *config.Config) {
		if edge != "" {
			c.Proxy.Upstream, c.Server.Edge = "", edge
		}
	})
	noAdmin := env.createKey(t, `{"name":"no admin","owner_id":"org_paths","tier":"basic"}`)
	admin := env.app.AdminAddr()
	if edge != "" {
		admin = env.app.Addr() // /v1 is on listen without a proxy
	}
	for _, uri := range []string{"/api/admin;x=1/users", "/api;/admin/users", "/api/public/..\\admin\\users", "/api/public/%2e%2e/admin/users?x=1"} {
		status, code := rawGet(t, admin, "GET", "/v1/authorize", map[string]string{"X-API-Key": noAdmin, "X-Original-URI": uri})
		if status != http.StatusBadRequest || code != "INVALID_PATH" {
			t.Errorf("authorize %s: %d %q, want 400 INVALID_PATH", uri, status, code)
		}
	}
	// nginx's auth_request passes only 401 and 403 on: with deny_status
	// the refusal takes that status.
	status, code := rawGet(t, admin, "GET", "/v1/authorize?deny_status=403", map[string]string{"X-API-Key": noAdmin, "X-Original-URI": "/api;/admin/users"})
	if status != http.StatusForbidden || code != "INVALID_PATH" {
		t.Errorf("authorize with deny_status=403: %d %q, want 403 INVALID_PATH", status, code)
	}
	// Envoy appends the original path to the endpoint's.
	for _, target := range []string{"/v1/authorize/api/admin;x=1/users", "/v1/authorize/api/public/..%5Cadmin/users"} {
		status, code := rawGet(t, admin, "GET", target, map[string]string{"X-API-Key": noAdmin})
		if status != http.StatusBadRequest || code != "INVALID_PATH" {
			t.Errorf("authorize %s: %d %q, want 400 INVALID_PATH", target, status, code)
		}
	}

	for _, path := range []string{"/api;/admin/users", "/api/admin;x=1/users", `/api/public/..\\admin\\users`, "/api/public/a\\u0000b", "/api/public/a%2Fb"} {
		body := `{"key":"` + noAdmin + `","method":"GET","path":"` + path + `"}`
		resp, err := http.Post("http://"+admin+"/v1/check", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		code := errorCode(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || code != "INVALID_PATH" {
			t.Errorf("check %s: %d %q, want 400 INVALID_PATH", path, resp.StatusCode, code)
		}
	}
}

// Each server.allow_path_* setting lets one kind of path through, and the
// route is then matched on the path as such an upstream reads it, so the
// kind it lets through cannot be used to escape a route either.
// case_insensitive_routes matches /API/admin against /api/admin/*.
func TestRelaxedPathRules(t *testing.T) {
	type request struct {
		target     string
		withKey    bool // the key without the admin scope
		status     int
		code       string
		upstreamAt string // the request URI the upstream saw; "" for none
	}
	cases := []struct {
		name     string
		mutate   func(*config.Config)
		requests []request
	}{
		{"defaults", nil, []request{
			{"/API/admin/users", true, 200, "", "/API/admin/users"}, // case-sensitive, as most upstreams are
		}},
		{"allow_path_semicolons", func(c *config.Config) { c.Server.AllowPathSemicolons = true }, []request{
			{"/api/admin;x=1/users", true, 403, "INSUFFICIENT_SCOPE", ""},
			{"/api;/admin/users", true, 403, "INSUFFICIENT_SCOPE", ""},
			{"/api/public;jsessionid=1/a%3Bb", false, 200, "", "/api/public;jsessionid=1/a%3Bb"},
			{"/api/public/..;/admin/users", false, 400, "INVALID_PATH", ""},
			{"/api/public/a\\b", false, 400, "INVALID_PATH", ""},
		}},
		{"allow_path_backslashes", func(c *config.Config) { c.Server.AllowPathBackslashes = true }, []request{
			{"/api\\admin\\users", false, 401, "MISSING_KEY", ""},
			{"/api%5Cadmin/users", true, 403, "INSUFFICIENT_SCOPE", ""},
			{"/api/public/..\\admin\\users", false, 400, "INVALID_PATH", ""},
			{"/api/public\\a%5Cb", false, 200, "", "/api/public\\a%5Cb"},
		}},
		{"allow_path_encoded_slashes", func(c *config.Config) { c.Server.AllowPathEncodedSlashes = true }, []request{
			{"/api%2Fadmin/users", true, 403, "INSUFFICIENT_SCOPE", ""},
			{"/api/public/a%2Fb", false, 200, "", "/api/public/a%2Fb"},
			{"/api/public/..%2Fadmin/users", false, 400, "INVALID_PATH", ""},
		}},
		{"allow_path_dot_segments", func(c *config.Config) { c.Server.AllowPathDotSegments = true }, []request{
			{"/api/public/../admin/users", false, 401, "MISSING_KEY", ""},
			{"/api/public/%2e%2e/admin/users", false, 401, "MISSING_KEY", ""},
			{"/api/admin/../public/a", false, 200, "", "/api/public/a"},
			{"/api/public/a%00b", false, 400, "INVALID_PATH", ""}, // NUL is never allowed
		}},
		{"case_insensitive_routes", func(c *config.Config) { c.Server.CaseInsensitiveRoutes = true }, []request{
			{"/API/admin/users", true, 403, "INSUFFICIENT_SCOPE", ""},
			{"/Api/ADMIN/users", false, 401, "MISSING_KEY", ""},
			{"/API/Public/a", false, 200, "", "/API/Public/a"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := startPathsApp(t, c.mutate)
			key := map[string]string{"X-API-Key": env.createKey(t, `{"name":"no admin","owner_id":"org_paths","tier":"basic"}`)}
			for _, r := range c.requests {
				before := len(env.upstreamSaw())
				headers := map[string]string(nil)
				if r.withKey {
					headers = key
				}
				status, code := rawGet(t, env.app.Addr(), "GET", r.target, headers)
				if status != r.status || code != r.code {
					t.Errorf("GET %s: %d %q, want %d %q", r.target, status, code, r.status, r.code)
				}
				saw := env.upstreamSaw()[before:]
				switch {
				case r.upstreamAt == "" && len(saw) != 0:
					t.Errorf("GET %s reached the upstream as %q", r.target, saw)
				case r.upstreamAt != "" && (len(saw) != 1 || saw[0] != "GET "+r.upstreamAt):
					t.Errorf("GET %s: the upstream saw %q, want GET %s", r.target, saw, r.upstreamAt)
				}
			}
		})
	}
}

// case_insensitive_routes goes with the route table, so a reload turns it
// on without a restart.
func TestCaseInsensitiveRoutesReload(t *testing.T) {
	var cfg *config.Config
	env := startPathsApp(t, func(c *config.Config) { cfg = c })
	key := map[string]string{"X-API-Key": env.createKey(t, `{"name":"no admin","owner_id":"org_paths","tier":"basic"}`)}
	if status, _ := rawGet(t, env.app.Addr(), "GET", "/API/admin/users", key); status != 200 {
		t.Fatalf("before the reload: %d, want 200 (case-sensitive routes)", status)
	}
	next := *cfg
	next.Server.CaseInsensitiveRoutes = true
	if err := env.app.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if status, code := rawGet(t, env.app.Addr(), "GET", "/API/admin/users", key); status != 403 || code != "INSUFFICIENT_SCOPE" {
		t.Fatalf("after the reload: %d %q, want 403 INSUFFICIENT_SCOPE", status, code)
	}
}

// HEAD is served by GET handlers, so it must meet a GET route's limits,
// not fall through to a looser route after it.
func TestHeadMeetsGetRouteLimits(t *testing.T) {
	env := startPathsApp(t, func(c *config.Config) {
		c.Routes = []config.Route{
			{Path: "/api/reports/*", Methods: []string{"GET"}, Preset: "protected", RequestsPerMinute: 3},
			{Path: "/api/*", Preset: "protected"},
		}
	})
	key := env.createKey(t, `{"name":"big","owner_id":"org_head","tier":"enterprise"}`)
	var got []int
	for _, method := range []string{"GET", "GET", "GET", "GET", "HEAD", "HEAD", "HEAD"} {
		status, _ := rawGet(t, env.app.Addr(), method, "/api/reports/1", map[string]string{"X-API-Key": key})
		got = append(got, status)
	}
	want := []int{200, 200, 200, 429, 429, 429, 429}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("GET ×4 then HEAD ×3 answered %v, want %v", got, want)
		}
	}
}
