package api_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// upstreamRecorder is the app behind the proxy: it remembers what it got.
type upstreamRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (u *upstreamRecorder) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// since returns the requests after the first n.
func (u *upstreamRecorder) since(n int) []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs[n:]...)
}

type gateFixture struct {
	keys     *keys.Service
	upstream *upstreamRecorder
	proxy    *edgeServer // enforcement listener in proxy mode, on gateConfig.proxyEdge
	admin    *edgeServer // admin listener in proxy mode (/v1/*), or the edge of gateConfig.edge
	records  *edgetest.Records
	secrets  map[string]string
	ids      map[string]string
}

type gateConfig struct {
	trusted      []string
	serviceToken string
	upstreamURL  string // override (e.g. a dead port)
	headerTimout time.Duration
	maxBody      int64
	internalRate float64
	// edge, when set, serves /v1 (f.admin) on that edge without a proxy
	// (edges_test.go); "" keeps proxy mode, /v1 on the admin listener.
	edge string
	// proxyEdge is the server of the proxy (f.proxy); "" is
	// defaultProxyEdge.
	proxyEdge string
}

func newGateFixture(t testing.TB, gc gateConfig) *gateFixture {
	t.Helper()
	f := &gateFixture{upstream: &upstreamRecorder{}, records: &edgetest.Records{}, secrets: map[string]string{}, ids: map[string]string{}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		clone := r.Clone(r.Context())
		clone.Body = io.NopCloser(strings.NewReader(string(body)))
		f.upstream.mu.Lock()
		f.upstream.reqs = append(f.upstream.reqs, clone)
		f.upstream.mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/slow"):
			time.Sleep(300 * time.Millisecond)
		case strings.HasPrefix(r.URL.Path, "/fail"):
			w.WriteHeader(503)
			return
		case strings.HasSuffix(r.URL.Path, "/stream"):
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				io.WriteString(w, "data: "+strconv.Itoa(i)+"\n\n")
				w.(http.Flusher).Flush()
				time.Sleep(20 * time.Millisecond)
			}
			return
		}
		w.Header().Set("X-Cache", "HIT")
		io.WriteString(w, `{"ok":true,"path":"`+r.URL.Path+`"}`)
	}))
	t.Cleanup(up.Close)

	st := storetest.MustOpen(t)
	svc, err := keys.New(keys.Options{Store: st, Secret: []byte("gate-secret-gate-secret"),
		Policy: keys.Policy{Tiers: []string{"free", "basic", "enterprise", "unlimited"}, DefaultTier: "free", Scopes: []string{"forms:read", "admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	lim, err := limiter.New(limiter.Options{Tiers: map[string]limiter.Tier{
		"free":       {RequestsPerHour: 100, BurstPerMinute: 3},
		"basic":      {RequestsPerHour: 500, BurstPerMinute: 4},
		"enterprise": {RequestsPerHour: 100000, BurstPerMinute: 10000},
		"unlimited":  {RequestsPerHour: 1 << 50, BurstPerMinute: 1 << 50},
	}})
	if err != nil {
		t.Fatal(err)
	}
	routes, err := enforce.NewRoutes([]enforce.Route{
		{Pattern: "/api/forms/*", Preset: enforce.Protected, Scopes: []string{"forms:read"}},
		{Pattern: "/public/*", Preset: enforce.Public},
		{Pattern: "/admin/*", Preset: enforce.Admin},
		{Pattern: "/internal/*", Preset: enforce.Internal},
		{Pattern: "/export/*", Preset: enforce.Protected, AllowQueryKey: true},
	}, enforce.Route{Preset: enforce.Protected})
	if err != nil {
		t.Fatal(err)
	}
	engine := enforce.NewEngine(svc, lim, enforce.Policy{Routes: routes, PublicTier: "free", StrictestTier: "free"})
	var trusted enforce.TrustedProxies
	for _, p := range gc.trusted {
		trusted = append(trusted, netip.MustParsePrefix(p))
	}
	target := up.URL
	if gc.upstreamURL != "" {
		target = gc.upstreamURL
	}
	u, _ := url.Parse(target)
	if gc.edge != "" {
		u = nil // forward-auth and check mode: /v1 on the enforcement listener
	}
	if gc.headerTimout == 0 {
		gc.headerTimout = 5 * time.Second
	}
	srv := api.New(api.Options{Gateway: gateway.Options{Keys: svc, Gate: gateway.GateOptions{Engine: engine, Recorder: f.records, Trusted: trusted, ServiceToken: gc.serviceToken,
		AuthorizeRateLimitedStatus: 429, MaxHeaderBytes: 8 << 10, CountryHeader: "Cf-Ipcountry", InternalSampleRate: gc.internalRate}, Proxy: gateway.ProxyOptions{Upstream: u, DialTimeout: time.Second, ResponseHeaderTimeout: gc.headerTimout,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 16, MaxBodyBytes: gc.maxBody}}, Admin: admin.Options{AdminToken: adminToken, Keys: svc}})
	srv.Admin().SetReady(true)
	if gc.edge != "" {
		f.admin = startEdge(t, gc.edge, srv)
	} else {
		if gc.proxyEdge == "" {
			gc.proxyEdge = defaultProxyEdge()
		}
		f.proxy = startEdge(t, gc.proxyEdge, srv)
		adm := httptest.NewServer(srv.AdminHandler())
		t.Cleanup(adm.Close)
		f.admin = &edgeServer{URL: adm.URL}
	}
	f.keys = svc
	for name, p := range map[string]keys.CreateParams{
		"basic":   {Tier: "basic", OwnerID: "org_b", Scopes: []string{"forms:read"}},
		"noscope": {Tier: "basic", OwnerID: "org_n"},
		"admin":   {Tier: "enterprise", OwnerID: "org_a", Scopes: []string{"admin", "forms:read"}},
		"bound":   {Tier: "basic", Scopes: []string{"forms:read"}, AllowedIPs: []string{"198.51.100.0/24"}},
		"browser": {Tier: "basic", Scopes: []string{"forms:read"}, AllowedOrigins: []string{"https://app.example.com"}},
		"revoked": {Tier: "basic"},
		"big":     {Tier: "enterprise", OwnerID: "org_big", Scopes: []string{"forms:read"}},
		"bench":   {Tier: "unlimited", OwnerID: "org_bench", Scopes: []string{"forms:read"}},
		"bare":    {Tier: "basic"}, // no owner, no scopes
	} {
		k, s, err := svc.Create(p, "test")
		if err != nil {
			t.Fatal(err)
		}
		f.secrets[name], f.ids[name] = s, k.ID
	}
	if _, err := svc.Revoke(f.ids["revoked"], "test", ""); err != nil {
		t.Fatal(err)
	}
	return f
}

func do(t *testing.T, method, url string, headers map[string]string, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func TestProxyDecisionsPerPresetAndCode(t *testing.T) {
	onProxyEdges(t, testProxyDecisionsPerPresetAndCode)
}

func testProxyDecisionsPerPresetAndCode(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		code    string
	}{
		{"protected, bearer", "/api/forms/1", map[string]string{"Authorization": "Bearer " + f.secrets["basic"]}, 200, ""},
		{"protected, x-api-key", "/api/forms/1", map[string]string{"X-API-Key": f.secrets["basic"]}, 200, ""},
		{"missing key", "/api/forms/1", nil, 401, "MISSING_KEY"},
		{"unknown key", "/api/forms/1", map[string]string{"X-API-Key": "wsk_000000000000000000000000000000000000"}, 401, "NOT_FOUND"},
		{"revoked", "/api/forms/1", map[string]string{"X-API-Key": f.secrets["revoked"]}, 401, "REVOKED"},
		{"ip not allowed", "/api/forms/1", map[string]string{"X-API-Key": f.secrets["bound"]}, 403, "IP_NOT_ALLOWED"},
		{"origin not allowed", "/api/forms/1", map[string]string{"X-API-Key": f.secrets["browser"], "Origin": "https://evil.example"}, 403, "ORIGIN_NOT_ALLOWED"},
		{"origin allowed", "/api/forms/1", map[string]string{"X-API-Key": f.secrets["browser"], "Origin": "https://app.example.com"}, 200, ""},
		{"scope missing", "/api/forms/1", map[string]string{"X-API-Key": f.secrets["noscope"]}, 403, "INSUFFICIENT_SCOPE"},
		{"admin preset without admin scope", "/admin/x", map[string]string{"X-API-Key": f.secrets["basic"]}, 403, "INSUFFICIENT_SCOPE"},
		{"admin preset", "/admin/x", map[string]string{"X-API-Key": f.secrets["admin"]}, 200, ""},
		{"public", "/public/x", nil, 200, ""},
		{"internal", "/internal/x", nil, 200, ""},
		{"dot-dot cannot escape to a public pattern", "/public/../api/forms/1", nil, 400, "INVALID_PATH"}, // refused (server.allow_path_dot_segments: 401 MISSING_KEY, app/paths_test.go)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.upstream.count()
			r := do(t, "GET", f.proxy.URL+c.path, c.headers, "")
			if c.code != "" {
				checkError(t, r, c.status, c.code)
				if f.upstream.count() != before {
					t.Fatal("a denied request reached the upstream")
				}
				return
			}
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if f.upstream.count() != before+1 {
				t.Fatal("the allowed request did not reach the upstream")
			}
		})
	}
}

func TestRateLimitHeadersAndRetryAfter(t *testing.T) {
	onProxyEdges(t, testRateLimitHeadersAndRetryAfter)
}

func testRateLimitHeadersAndRetryAfter(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	h := map[string]string{"X-API-Key": f.secrets["basic"]} // basic: burst 4 a minute
	policyRe := regexp.MustCompile(`^"hour";q=500;w=3600, "minute";q=4;w=60$`)
	limitRe := regexp.MustCompile(`^"(hour|minute)";r=(\d+);t=(\d+)$`)
	for i := 1; i <= 5; i++ {
		r := do(t, "GET", f.proxy.URL+"/api/forms/1", h, "")
		if got := r.header.Get("RateLimit-Policy"); !policyRe.MatchString(got) {
			t.Fatalf("request %d: RateLimit-Policy %q", i, got)
		}
		m := limitRe.FindStringSubmatch(r.header.Get("RateLimit"))
		if m == nil {
			t.Fatalf("request %d: RateLimit %q", i, r.header.Get("RateLimit"))
		}
		remaining, _ := strconv.Atoi(m[2])
		reset, _ := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
		if r.header.Get("X-RateLimit-Remaining") != m[2] || r.header.Get("X-RateLimit-Limit") == "" || reset < time.Now().Unix() {
			t.Fatalf("request %d: legacy headers %v", i, r.header)
		}
		if i <= 4 {
			if r.status != 200 || m[1] != "minute" || remaining != 4-i {
				t.Fatalf("request %d: status %d, RateLimit %q", i, r.status, r.header.Get("RateLimit"))
			}
			if r.header.Get("Retry-After") != "" {
				t.Fatalf("request %d: Retry-After on a 200", i)
			}
			continue
		}
		checkError(t, r, 429, "RATE_LIMITED")
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	// Unlimited presets carry no limit headers.
	if r := do(t, "GET", f.proxy.URL+"/internal/x", nil, ""); r.header.Get("RateLimit") != "" {
		t.Fatal("RateLimit on an internal route")
	}
}

func TestUpstreamSeesIdentityNotKey(t *testing.T) { onProxyEdges(t, testUpstreamSeesIdentityNotKey) }

func testUpstreamSeesIdentityNotKey(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		gone    string
	}{
		{"bearer", "/api/forms/1?x=1", map[string]string{"Authorization": "Bearer " + f.secrets["basic"]}, "Authorization"},
		{"x-api-key", "/api/forms/1", map[string]string{"X-API-Key": f.secrets["basic"], "Authorization": "Bearer app-user-jwt"}, "X-Api-Key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.headers["X-Apiwarden-Key-Id"] = "spoofed"
			c.headers["X-Apiwarden-Tier"] = "enterprise"
			c.headers["Host"] = "forms.example.com"
			r := do(t, "GET", f.proxy.URL+c.path, c.headers, "")
			if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			got := f.upstream.last()
			if got.Header.Get(c.gone) != "" {
				t.Fatalf("%s reached the upstream", c.gone)
			}
			if c.gone == "X-Api-Key" && got.Header.Get("Authorization") != "Bearer app-user-jwt" {
				t.Fatal("the app's own Authorization header was not passed on")
			}
			want := map[string]string{"X-Apiwarden-Key-Id": f.ids["basic"], "X-Apiwarden-Owner": "org_b",
				"X-Apiwarden-Tier": "basic", "X-Apiwarden-Scopes": "forms:read"}
			for k, v := range want {
				if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("%s = %v, want [%s]", k, vs, v)
				}
			}
			if got.Header.Get("X-Request-Id") == "" || got.Header.Get("X-Request-Id") != r.header.Get("X-Request-Id") {
				t.Error("X-Request-Id not passed upstream")
			}
			if got.Host != "forms.example.com" {
				t.Errorf("upstream Host %q", got.Host)
			}
		})
	}
	// A query key is stripped from the URL the upstream sees.
	r := do(t, "GET", f.proxy.URL+"/export/all?format=csv&api_key="+f.secrets["basic"], nil, "")
	if r.status != 200 {
		t.Fatalf("query key: %d %s", r.status, r.body)
	}
	if q := f.upstream.last().URL.RawQuery; strings.Contains(q, "api_key") || !strings.Contains(q, "format=csv") {
		t.Fatalf("upstream query %q", q)
	}
	// On a public route a client cannot pose as a key either.
	do(t, "GET", f.proxy.URL+"/public/x", map[string]string{"X-Apiwarden-Key-Id": "spoofed"}, "")
	if f.upstream.last().Header.Get("X-Apiwarden-Key-Id") != "" {
		t.Fatal("spoofed identity header reached the upstream")
	}
}

func TestForwardedForTrust(t *testing.T) { onProxyEdges(t, testForwardedForTrust) }

func testForwardedForTrust(t *testing.T, edge string) {
	// The test client connects from 127.0.0.1.
	untrusted := newGateFixture(t, gateConfig{proxyEdge: edge})
	h := map[string]string{"X-API-Key": untrusted.secrets["bound"], "X-Forwarded-For": "198.51.100.9"}
	checkError(t, do(t, "GET", untrusted.proxy.URL+"/api/forms/1", h, ""), 403, "IP_NOT_ALLOWED")

	trusted := newGateFixture(t, gateConfig{proxyEdge: edge, trusted: []string{"127.0.0.1/32"}})
	h = map[string]string{"X-API-Key": trusted.secrets["bound"], "X-Forwarded-For": "6.6.6.6, 198.51.100.9"}
	if r := do(t, "GET", trusted.proxy.URL+"/api/forms/1", h, ""); r.status != 200 {
		t.Fatalf("trusted proxy: %d %s", r.status, r.body)
	}
	recs := trusted.records.All()
	if got := recs[len(recs)-1].ClientIP.String(); got != "198.51.100.9" {
		t.Fatalf("recorded client %s", got)
	}
}

func TestUpstreamDownAndSlow(t *testing.T) { onProxyEdges(t, testUpstreamDownAndSlow) }

func testUpstreamDownAndSlow(t *testing.T, edge string) {
	// Port 1 refuses: nothing listens there, and no test's listener on
	// port 0 can be given it (a closed test server's port could be).
	f := newGateFixture(t, gateConfig{proxyEdge: edge, upstreamURL: "http://127.0.0.1:1"})
	checkError(t, do(t, "GET", f.proxy.URL+"/public/x", nil, ""), 502, "UPSTREAM_UNREACHABLE")

	slow := newGateFixture(t, gateConfig{proxyEdge: edge, headerTimout: 100 * time.Millisecond})
	checkError(t, do(t, "GET", slow.proxy.URL+"/slow/public", map[string]string{"X-API-Key": slow.secrets["big"]}, ""), 504, "UPSTREAM_TIMEOUT")
	recs := slow.records.All()
	if last := recs[len(recs)-1]; last.ErrorCategory != metrics.ErrorUpstreamTimeout || last.Status != 504 {
		t.Fatalf("record %+v", last)
	}
}

func TestProxyRecordsEveryRequest(t *testing.T) { onProxyEdges(t, testProxyRecordsEveryRequest) }

func testProxyRecordsEveryRequest(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	do(t, "POST", f.proxy.URL+"/api/forms/7", map[string]string{"X-API-Key": f.secrets["big"], "User-Agent": "planner/1.0", "Cf-Ipcountry": "DE"}, `{"a":1}`)
	do(t, "GET", f.proxy.URL+"/fail/x", map[string]string{"X-API-Key": f.secrets["big"]}, "")
	do(t, "GET", f.proxy.URL+"/api/forms/7", nil, "")
	recs := f.records.All()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	ok, fail, denied := recs[0], recs[1], recs[2]
	if ok.Status != 200 || ok.Method != "POST" || ok.Route != "/api/forms/*" || ok.Path != "/api/forms/7" || ok.KeyID != f.ids["big"] ||
		ok.OwnerID != "org_big" || ok.Tier != "enterprise" || ok.RequestBytes != 7 || ok.ResponseBytes == 0 || ok.UserAgent != "planner/1.0" ||
		ok.Country != "DE" || ok.Decision.String() != "VALID" || ok.CacheStatus != metrics.CacheHit || ok.RequestID == "" ||
		ok.Latency <= 0 || ok.UpstreamLatency <= 0 || ok.UpstreamLatency > ok.Latency {
		t.Errorf("allowed record %+v", ok)
	}
	if fail.Status != 503 || fail.ErrorCategory != metrics.ErrorUpstream5xx {
		t.Errorf("upstream failure record %+v", fail)
	}
	if denied.Status != 401 || denied.Decision.String() != "MISSING_KEY" || denied.ErrorCategory != metrics.ErrorAuth || denied.UpstreamLatency != 0 {
		t.Errorf("denied record %+v", denied)
	}
}

func TestOversizedHeadersAndBody(t *testing.T) { onProxyEdges(t, testOversizedHeadersAndBody) }

func testOversizedHeadersAndBody(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge, maxBody: 1024})
	checkError(t, do(t, "GET", f.proxy.URL+"/public/x", map[string]string{"X-Big": strings.Repeat("a", 10<<10)}, ""), 431, "HEADERS_TOO_LARGE")
	checkError(t, do(t, "POST", f.proxy.URL+"/public/x", nil, strings.Repeat("b", 4096)), 413, "PAYLOAD_TOO_LARGE")
	if r := do(t, "POST", f.proxy.URL+"/public/x", nil, strings.Repeat("b", 1000)); r.status != 200 {
		t.Fatalf("small body: %d", r.status)
	}
}

func TestStreamingAndWebSocketUpgrade(t *testing.T) {
	onProxyEdges(t, testStreamingAndWebSocketUpgrade)
}

func testStreamingAndWebSocketUpgrade(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	// Server-sent events arrive as they are written, not at the end.
	resp, err := http.Get(f.proxy.URL + "/public/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: 0\n" {
		t.Fatalf("first event %q %v", line, err)
	}

	// A WebSocket handshake is passed through and the connection is spliced.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		buf := make([]byte, 5)
		io.ReadFull(rw, buf)
		rw.Write(buf)
		rw.Flush()
	}))
	defer echo.Close()
	ws := newGateFixture(t, gateConfig{proxyEdge: edge, upstreamURL: echo.URL})
	conn := edgetest.Dial(t, ws.proxy.URL)
	io.WriteString(conn, "GET /public/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("handshake answer %q", status)
	}
	for {
		l, _ := br.ReadString('\n')
		if l == "\r\n" || l == "" {
			break
		}
	}
	io.WriteString(conn, "hello")
	got := make([]byte, 5)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "hello" {
		t.Fatalf("echo %q %v", got, err)
	}
}

func TestForwardAuthVariants(t *testing.T) {
	for _, edge := range forwardAuthEdges {
		t.Run(edgeName(edge), func(t *testing.T) { testForwardAuthVariants(t, edge) })
	}
}

func testForwardAuthVariants(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{trusted: []string{"127.0.0.1/32"}, edge: edge})
	key := f.secrets["basic"]
	cases := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		code    string
	}{
		{"nginx auth_request", "GET", "/v1/authorize", map[string]string{"X-Original-URI": "/api/forms/1?x=1", "X-Original-Method": "GET", "X-API-Key": key, "X-Forwarded-For": "203.0.113.5"}, 200, "VALID"},
		{"traefik forwardauth", "GET", "/v1/authorize", map[string]string{"X-Forwarded-Uri": "/api/forms/1", "X-Forwarded-Method": "POST", "Authorization": "Bearer " + key, "X-Forwarded-For": "203.0.113.5"}, 200, "VALID"},
		{"envoy ext_authz appends the path", "DELETE", "/v1/authorize/api/forms/1", map[string]string{"X-API-Key": key}, 200, "VALID"},
		{"no key", "GET", "/v1/authorize", map[string]string{"X-Original-URI": "/api/forms/1"}, 401, "MISSING_KEY"},
		{"public path", "GET", "/v1/authorize", map[string]string{"X-Forwarded-Uri": "/public/page"}, 200, "VALID"},
		{"scope decided on the original path", "GET", "/v1/authorize", map[string]string{"X-Forwarded-Uri": "/admin/x", "X-API-Key": key}, 403, "INSUFFICIENT_SCOPE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, f.admin.URL+c.path, c.headers, "")
			if r.header.Get("X-Apiwarden-Code") != c.code {
				t.Fatalf("X-Apiwarden-Code %q, want %s (status %d %s)", r.header.Get("X-Apiwarden-Code"), c.code, r.status, r.body)
			}
			if c.status != 200 {
				checkError(t, r, c.status, c.code)
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if strings.HasPrefix(c.headers["X-Forwarded-Uri"]+c.headers["X-Original-URI"]+c.path, "/public") {
				return
			}
			if r.header.Get("X-Apiwarden-Key-Id") != f.ids["basic"] || r.header.Get("X-Apiwarden-Tier") != "basic" ||
				r.header.Get("X-Apiwarden-Owner") != "org_b" || r.header.Get("RateLimit") == "" {
				t.Fatalf("identity headers %v", r.header)
			}
		})
	}
	recs := f.records.All()
	if got := recs[0]; got.ClientIP.String() != "203.0.113.5" || got.Path != "/api/forms/1" || got.Route != "/api/forms/*" {
		t.Fatalf("forward-auth record %+v", got)
	}
	if got := recs[1]; got.Method != "POST" {
		t.Fatalf("method from X-Forwarded-Method: %+v", got)
	}
}

// /v1/authorize names the key's owner and scopes only when it has them:
// a key with neither is answered with its id and tier alone.
func TestForwardAuthOmitsEmptyIdentity(t *testing.T) {
	for _, edge := range forwardAuthEdges {
		t.Run(edgeName(edge), func(t *testing.T) {
			f := newGateFixture(t, gateConfig{edge: edge})
			r := do(t, "GET", f.admin.URL+"/v1/authorize", map[string]string{"X-Original-URI": "/other/x", "X-API-Key": f.secrets["bare"]}, "")
			if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			got := map[string][]string{}
			for k, vs := range r.header {
				if strings.HasPrefix(k, "X-Apiwarden-") {
					got[k] = vs
				}
			}
			want := map[string][]string{"X-Apiwarden-Key-Id": {f.ids["bare"]}, "X-Apiwarden-Tier": {"basic"}, "X-Apiwarden-Code": {"VALID"}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("answer headers %v, want %v", got, want)
			}
		})
	}
}

func TestForwardAuthDenyStatus(t *testing.T) {
	for _, edge := range forwardAuthEdges {
		t.Run(edgeName(edge), func(t *testing.T) { testForwardAuthDenyStatus(t, edge) })
	}
}

func testForwardAuthDenyStatus(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{edge: edge})
	h := map[string]string{"X-Original-URI": "/api/forms/1", "X-API-Key": f.secrets["basic"]}
	for range 4 {
		do(t, "GET", f.admin.URL+"/v1/authorize", h, "")
	}
	r := do(t, "GET", f.admin.URL+"/v1/authorize?deny_status=403", h, "")
	checkError(t, r, 403, "RATE_LIMITED")
	if r.header.Get("X-Apiwarden-Code") != "RATE_LIMITED" || r.header.Get("Retry-After") == "" {
		t.Fatalf("headers %v", r.header)
	}
	checkError(t, do(t, "GET", f.admin.URL+"/v1/authorize", h, ""), 429, "RATE_LIMITED")
	checkError(t, do(t, "GET", f.admin.URL+"/v1/authorize?deny_status=500", h, ""), 400, "INVALID_PARAMETER")
}

func TestCheckAPI(t *testing.T) {
	for _, edge := range forwardAuthEdges {
		t.Run(edgeName(edge), func(t *testing.T) { testCheckAPI(t, edge) })
	}
}

func testCheckAPI(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{serviceToken: "svc-token", edge: edge})
	body := `{"key":"` + f.secrets["basic"] + `","method":"GET","path":"/api/forms/3","ip":"192.0.2.1","cost":2}`
	checkError(t, do(t, "POST", f.admin.URL+"/v1/check", map[string]string{"Content-Type": "application/json"}, body), 401, "UNAUTHORIZED")
	h := map[string]string{"Content-Type": "application/json", "X-Apiwarden-Token": "svc-token"}
	type checkResp struct {
		Allowed   bool     `json:"allowed"`
		Code      string   `json:"code"`
		KeyID     string   `json:"key_id"`
		OwnerID   string   `json:"owner_id"`
		Tier      string   `json:"tier"`
		Scopes    []string `json:"scopes"`
		RateLimit *struct {
			Limit, Remaining, Reset int64
		} `json:"ratelimit"`
		RetryAfter int64 `json:"retry_after"`
	}
	r := do(t, "POST", f.admin.URL+"/v1/check", h, body)
	got := decode[checkResp](t, r)
	if r.status != 200 || !got.Allowed || got.Code != "VALID" || got.KeyID != f.ids["basic"] || got.OwnerID != "org_b" ||
		got.Tier != "basic" || len(got.Scopes) != 1 || got.RateLimit == nil || got.RateLimit.Limit != 4 || got.RateLimit.Remaining != 2 {
		t.Fatalf("check: %d %s", r.status, r.body)
	}
	r = do(t, "POST", f.admin.URL+"/v1/check", h, body) // 2 more: the burst of 4 is used up
	r = do(t, "POST", f.admin.URL+"/v1/check", h, body)
	got = decode[checkResp](t, r)
	if r.status != 200 || got.Allowed || got.Code != "RATE_LIMITED" || got.RetryAfter < 1 {
		t.Fatalf("check over the limit: %d %s", r.status, r.body)
	}
	checkError(t, do(t, "POST", f.admin.URL+"/v1/check", h, `{"key":"x","ip":"not-an-ip"}`), 400, "INVALID_REQUEST")
	checkError(t, do(t, "POST", f.admin.URL+"/v1/check", h, `{"key":"x","colour":1}`), 400, "INVALID_JSON")
	var missing checkResp
	json.Unmarshal(do(t, "POST", f.admin.URL+"/v1/check", h, `{"path":"/api/forms/1"}`).body, &missing)
	if missing.Allowed || missing.Code != "MISSING_KEY" {
		t.Fatalf("check without key: %+v", missing)
	}
	if edge != "" {
		return // no proxy listener
	}
	// The proxy listener is not guarded by the service token; /v1 is not on it.
	if r := do(t, "POST", f.proxy.URL+"/v1/check", nil, body); r.status != 401 || strings.Contains(string(r.body), "VALID") {
		t.Fatalf("/v1/check on the proxy listener should go upstream as a normal (unauthenticated) request: %d %s", r.status, r.body)
	}
}

func TestServiceRoutesOnlyWithoutProxyOnEnforcementListener(t *testing.T) {
	st := storetest.MustOpen(t)
	svc, _ := keys.New(keys.Options{Store: st, Secret: []byte("x-secret-x-secret-x"), Policy: keys.Policy{Tiers: []string{"free"}, DefaultTier: "free"}})
	defer svc.Close()
	lim, _ := limiter.New(limiter.Options{Tiers: map[string]limiter.Tier{"free": {RequestsPerHour: 10, BurstPerMinute: 10}}})
	routes, _ := enforce.NewRoutes(nil, enforce.Route{Preset: enforce.Public})
	srv := api.New(api.Options{Gateway: gateway.Options{Keys: svc, Gate: gateway.GateOptions{Engine: enforce.NewEngine(svc, lim, enforce.Policy{Routes: routes, PublicTier: "free"})}}, Admin: admin.Options{AdminToken: adminToken, Keys: svc}})
	enf := httptest.NewServer(srv.EnforcementHandler())
	defer enf.Close()
	if r := do(t, "GET", enf.URL+"/v1/authorize", map[string]string{"X-Forwarded-Uri": "/x"}, ""); r.status != 200 {
		t.Fatalf("/v1/authorize on listen without upstream: %d", r.status)
	}
	checkError(t, do(t, "GET", enf.URL+"/admin/v1/keys", nil, ""), 404, "ROUTE_NOT_FOUND")
	adm := httptest.NewServer(srv.AdminHandler())
	defer adm.Close()
	checkError(t, do(t, "GET", adm.URL+"/v1/authorize", nil, ""), 404, "ROUTE_NOT_FOUND")
}

func TestForwardAuthCannotBeSteeredByTheClient(t *testing.T) {
	for _, edge := range forwardAuthEdges {
		t.Run(edgeName(edge), func(t *testing.T) { testForwardAuthCannotBeSteeredByTheClient(t, edge) })
	}
}

func testForwardAuthCannotBeSteeredByTheClient(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{trusted: []string{"127.0.0.1/32"}, edge: edge})
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		code    string
	}{
		// nginx sets X-Original-URI and passes the client's headers along:
		// a client-added X-Forwarded-Uri must not re-route the decision.
		{"conflicting uri headers", "/v1/authorize", map[string]string{"X-Original-URI": "/api/forms/1", "X-Forwarded-Uri": "/public/x"}, 400, "INVALID_REQUEST"},
		{"conflicting method headers", "/v1/authorize", map[string]string{"X-Original-URI": "/public/x", "X-Original-Method": "GET", "X-Forwarded-Method": "DELETE"}, 400, "INVALID_REQUEST"},
		{"agreeing headers are fine", "/v1/authorize", map[string]string{"X-Original-URI": "/public/x", "X-Forwarded-Uri": "/public/x"}, 200, "VALID"},
		// Envoy's path form: decoded once, by the router.
		{"envoy path decoded once", "/v1/authorize/public%252Fx", nil, 401, "MISSING_KEY"},
		{"envoy keeps the original query", "/v1/authorize/export/all?api_key=" + f.secrets["basic"], nil, 200, "VALID"},
		{"service token errors carry the code", "/v1/authorize", map[string]string{"X-Original-URI": "/public/x", "X-Apiwarden-Token": "x"}, 200, "VALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "GET", f.admin.URL+c.path, c.headers, "")
			if r.header.Get("X-Apiwarden-Code") != c.code {
				t.Fatalf("X-Apiwarden-Code %q, want %s (%d %s)", r.header.Get("X-Apiwarden-Code"), c.code, r.status, r.body)
			}
			if c.status != 200 {
				checkError(t, r, c.status, c.code)
			} else if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
		})
	}
	tokened := newGateFixture(t, gateConfig{serviceToken: "svc", edge: edge})
	r := do(t, "GET", tokened.admin.URL+"/v1/authorize", map[string]string{"X-Original-URI": "/public/x"}, "")
	checkError(t, r, 401, "UNAUTHORIZED")
	if r.header.Get("X-Apiwarden-Code") != "UNAUTHORIZED" || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("service-token refusal headers %v", r.header)
	}
}

func TestForwardedHeadersReachTheUpstream(t *testing.T) {
	onProxyEdges(t, testForwardedHeadersReachTheUpstream)
}

func testForwardedHeadersReachTheUpstream(t *testing.T, edge string) {
	cases := []struct {
		name      string
		trusted   []string
		wantXFF   string
		wantProto string
	}{
		{"behind a trusted load balancer", []string{"127.0.0.1/32"}, "203.0.113.7, 127.0.0.1", "https"},
		{"untrusted peer", nil, "203.0.113.7, 127.0.0.1", "http"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newGateFixture(t, gateConfig{proxyEdge: edge, trusted: c.trusted})
			r := do(t, "GET", f.proxy.URL+"/public/x", map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}, "")
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			got := f.upstream.last()
			if xff := got.Header.Get("X-Forwarded-For"); xff != c.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", xff, c.wantXFF)
			}
			if p := got.Header.Get("X-Forwarded-Proto"); p != c.wantProto {
				t.Errorf("X-Forwarded-Proto %q, want %q", p, c.wantProto)
			}
		})
	}
}

// Requests to internal routes (health checks) are recorded one in N;
// the rest of the traffic always.
func TestInternalRoutesAreSampled(t *testing.T) { onProxyEdges(t, testInternalRoutesAreSampled) }

func testInternalRoutesAreSampled(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge, internalRate: 0.25})
	for range 16 {
		do(t, "GET", f.proxy.URL+"/internal/health", nil, "")
	}
	for range 3 {
		do(t, "GET", f.proxy.URL+"/public/x", nil, "")
	}
	internal, public := 0, 0
	for _, r := range f.records.All() {
		switch r.Route {
		case "/internal/*":
			internal++
		case "/public/*":
			public++
		}
	}
	if internal != 4 || public != 3 {
		t.Fatalf("recorded %d internal (want 4 of 16) and %d public (want all 3)", internal, public)
	}
}
