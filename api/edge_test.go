package api_test

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// Attacks on the sidecar proxy from issue 13, each against the real
// handlers over loopback with an upstream that records what reached it.
// Raw sockets send what Go's client would refuse or rewrite.

// rawConn is a client connection to the proxy that writes bytes as given.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, serverURL string) *rawConn {
	t.Helper()
	conn := edgetest.Dial(t, serverURL)
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// roundTrip writes a request and reads the answer's status and body; a
// closed connection reads as status 0.
func (c *rawConn) roundTrip(request string) (status int, body string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, request); err != nil {
		return 0, ""
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// tunnelUpstream answers 101 to any Upgrade, as an h2c-capable app
// server does, and then reads HTTP/1.1 requests on the switched
// connection: each one it reads there reached the app past the gateway.
type tunnelUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	tunneled []http.Header
	plain    []http.Header
}

func newTunnelUpstream(t *testing.T) *tunnelUpstream {
	u := &tunnelUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgrade := r.Header.Get("Upgrade")
		if upgrade == "" {
			u.mu.Lock()
			u.plain = append(u.plain, r.Header.Clone())
			u.mu.Unlock()
			io.WriteString(w, "plain")
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + upgrade + "\r\n\r\n")
		rw.Flush()
		for {
			req, err := http.ReadRequest(rw.Reader)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			u.mu.Lock()
			u.tunneled = append(u.tunneled, req.Header)
			u.mu.Unlock()
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ntunneled")
			rw.Flush()
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *tunnelUpstream) counts() (tunneled, plain int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.tunneled), len(u.plain)
}

// An Upgrade other than websocket must not open a tunnel to the upstream:
// every later request on a tunnel would skip the key, the limits and the
// record, with forged identity headers intact.
func TestUpgradeCannotTunnelPastTheGateway(t *testing.T) {
	onProxyEdges(t, testUpgradeCannotTunnelPastTheGateway)
}

func testUpgradeCannotTunnelPastTheGateway(t *testing.T, edge string) {
	cases := []struct {
		name, path, key, upgrade string
		wantSwitch               bool
	}{
		{"h2c on a public route", "/public/x", "", "h2c", false},
		{"h2c with a valid key", "/api/forms/1", "basic", "h2c", false},
		{"h2c in capitals", "/public/x", "", "H2C", false},
		{"websocket listed with h2c", "/public/x", "", "websocket, h2c", false},
		{"another protocol", "/public/x", "", "TLS/1.2", false},
		{"websocket without a key", "/api/forms/1", "", "websocket", false},
		{"websocket, allowed", "/public/x", "", "websocket", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newTunnelUpstream(t)
			f := newGateFixture(t, gateConfig{proxyEdge: edge, upstreamURL: up.URL})
			key := ""
			if c.key != "" {
				key = "X-API-Key: " + f.secrets[c.key] + "\r\n"
			}
			conn := dialRaw(t, f.proxy.URL)
			status, _ := conn.roundTrip("GET " + c.path + " HTTP/1.1\r\nHost: app.example\r\n" + key +
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: " + c.upgrade + "\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			if c.wantSwitch {
				if status != http.StatusSwitchingProtocols {
					t.Fatalf("an allowed websocket upgrade answered %d", status)
				}
				return
			}
			if status == http.StatusSwitchingProtocols {
				t.Errorf("the upgrade to %q was passed: 101", c.upgrade)
			}
			if status == 0 {
				return // refused by closing: nothing more can be sent
			}
			passed := 0
			for range 15 {
				st, body := conn.roundTrip("GET /admin/x HTTP/1.1\r\nHost: app.example\r\nX-Apiwarden-Scopes: admin\r\n\r\n")
				if st == 0 {
					break
				}
				if st != http.StatusUnauthorized || body == "tunneled" {
					passed++
				}
			}
			tunneled, _ := up.counts()
			if tunneled != 0 || passed != 0 {
				t.Fatalf("%d of 15 keyless requests got past the gateway; the upstream read %d on the switched connection", passed, tunneled)
			}
		})
	}
}

// An upstream that answers 101 to a request that asked for no upgrade
// must not turn the pooled connection into a tunnel either.
func TestUnaskedSwitchingProtocolsIsAnUpstreamError(t *testing.T) {
	onProxyEdges(t, testUnaskedSwitchingProtocolsIsAnUpstreamError)
}

func testUnaskedSwitchingProtocolsIsAnUpstreamError(t *testing.T, edge string) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		rw.Flush()
		io.Copy(io.Discard, rw)
	}))
	defer up.Close()
	f := newGateFixture(t, gateConfig{proxyEdge: edge, upstreamURL: up.URL})
	status, _ := dialRaw(t, f.proxy.URL).roundTrip("GET /public/x HTTP/1.1\r\nHost: app.example\r\n\r\n")
	if status != http.StatusBadGateway {
		t.Fatalf("an unasked-for 101 from the upstream answered %d, want 502", status)
	}
}

// The identity headers apiwarden adds reach the upstream whatever the
// client's Connection header names, on both forwarding paths.
func TestConnectionHeaderCannotDropIdentityHeaders(t *testing.T) {
	onProxyEdges(t, testConnectionHeaderCannotDropIdentityHeaders)
}

func testConnectionHeaderCannotDropIdentityHeaders(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	connection := "Connection: keep-alive, X-Apiwarden-Owner, X-Apiwarden-Scopes, x-apiwarden-key-id, X-APIWARDEN-TIER, X-Request-Id\r\n"
	cases := []struct{ name, request string }{
		{"lean path", "GET /api/forms/1 HTTP/1.1\r\nHost: app.example\r\nX-API-Key: " + f.secrets["basic"] + "\r\n" + connection + "\r\n"},
		{"reverse proxy path (streamed body)", "POST /api/forms/1 HTTP/1.1\r\nHost: app.example\r\nX-API-Key: " + f.secrets["basic"] + "\r\n" + connection +
			"Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, body := dialRaw(t, f.proxy.URL).roundTrip(c.request); status != 200 {
				t.Fatalf("status %d %s", status, body)
			}
			got := f.upstream.last().Header
			want := map[string]string{"X-Apiwarden-Key-Id": f.ids["basic"], "X-Apiwarden-Owner": "org_b",
				"X-Apiwarden-Tier": "basic", "X-Apiwarden-Scopes": "forms:read"}
			for k, v := range want {
				if vs := got.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("%s = %v, want [%s]", k, vs, v)
				}
			}
			if got.Get("X-Request-Id") == "" {
				t.Error("X-Request-Id was dropped")
			}
		})
	}
}

// apiwardenLookAlike reports whether a header name reads as one of
// apiwarden's to a CGI/WSGI-style upstream (HTTP_X_APIWARDEN_…).
func apiwardenLookAlike(name string) bool {
	return strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "x-apiwarden-")
}

// Headers that an upstream reading HTTP_X_APIWARDEN_* takes for
// apiwarden's own never reach it from the client.
func TestLookAlikeIdentityHeadersAreStripped(t *testing.T) {
	onProxyEdges(t, testLookAlikeIdentityHeadersAreStripped)
}

func testLookAlikeIdentityHeadersAreStripped(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	spoofed := "X_Apiwarden_Owner: org_admin\r\nx_apiwarden_scopes: admin\r\nX-APIWARDEN_TIER: enterprise\r\n" +
		"X_apiwarden-Key_Id: spoofed\r\nX-Apiwarden_Code: VALID\r\nX-Apiwarden-Owner: org_admin\r\n"
	cases := []struct {
		name, path, key string
		want            map[string]string
	}{
		{"public route", "/public/x", "", map[string]string{"X-Apiwarden-Tier": "free"}},
		{"protected route", "/api/forms/1", "basic", map[string]string{"X-Apiwarden-Key-Id": f.ids["basic"], "X-Apiwarden-Owner": "org_b",
			"X-Apiwarden-Tier": "basic", "X-Apiwarden-Scopes": "forms:read"}},
		// The owner and scopes headers are left out when the key has
		// none: the client's own copies must still go.
		{"key without owner or scopes", "/other/x", "bare", map[string]string{"X-Apiwarden-Key-Id": f.ids["bare"], "X-Apiwarden-Tier": "basic"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := ""
			if c.key != "" {
				key = "X-API-Key: " + f.secrets[c.key] + "\r\n"
			}
			if status, body := dialRaw(t, f.proxy.URL).roundTrip("GET " + c.path + " HTTP/1.1\r\nHost: app.example\r\n" + key + spoofed + "\r\n"); status != 200 {
				t.Fatalf("status %d %s", status, body)
			}
			got := map[string]string{}
			for k, vs := range f.upstream.last().Header {
				if apiwardenLookAlike(k) {
					got[k] = strings.Join(vs, "|")
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("upstream received %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Fatalf("upstream received %v, want %v", got, c.want)
				}
			}
		})
	}
}

// dashboardLogin logs in on the admin listener and returns the session
// cookie it set; behindTLS says the request came through a TLS proxy.
func dashboardLogin(t *testing.T, adminURL string, behindTLS bool) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest("POST", adminURL+"/admin/v1/session", strings.NewReader(`{"token":"`+adminToken+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if behindTLS {
		req.Header.Set("X-Forwarded-Proto", "https")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	return resp.Cookies()[0]
}

// The dashboard's session cookie is scoped to the host, not the port, so
// the browser sends it to the proxied app too: apiwarden takes it out of
// every proxied request and leaves the app's own cookies alone.
func TestSessionCookieNeverReachesTheApp(t *testing.T) {
	onProxyEdges(t, testSessionCookieNeverReachesTheApp)
}

func testSessionCookieNeverReachesTheApp(t *testing.T, edge string) {
	// Each request comes from its own address (through a trusted proxy),
	// so the public routes' per-IP limit stays out of the way.
	f := newGateFixture(t, gateConfig{proxyEdge: edge, trusted: []string{"127.0.0.1/32"}})
	client := 0
	plain := dashboardLogin(t, f.admin.URL, false)
	secure := dashboardLogin(t, f.admin.URL, true)
	if !strings.HasPrefix(secure.Name, "__Host-") || !secure.Secure || secure.Path != "/" || secure.Domain != "" {
		t.Errorf("session cookie behind TLS %+v: want a __Host- name, Secure, Path=/ and no Domain", secure)
	}
	// The __Host- session works for the admin API behind TLS.
	req, _ := http.NewRequest("GET", f.admin.URL+"/admin/v1/keys", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.AddCookie(&http.Cookie{Name: secure.Name, Value: secure.Value})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin call with the secure session: %v %v", resp, err)
	}
	for _, path := range []string{"/public/x", "/internal/x", "/api/forms/1"} {
		for _, c := range []*http.Cookie{plain, secure} {
			cookie := "theme=dark; " + c.Name + "=" + c.Value + "; lang=en"
			client++
			r := do(t, "GET", f.proxy.URL+path, map[string]string{"Cookie": cookie, "X-API-Key": f.secrets["big"],
				"X-Forwarded-For": "192.0.2." + strconv.Itoa(client)}, "")
			if r.status != 200 {
				t.Fatalf("%s: status %d %s", path, r.status, r.body)
			}
			got := f.upstream.last().Header.Values("Cookie")
			joined := strings.Join(got, "; ")
			if strings.Contains(joined, c.Value) || strings.Contains(joined, "apiwarden_session") {
				t.Errorf("%s: the app received the session cookie %s: %q", path, c.Name, got)
			}
			if !strings.Contains(joined, "theme=dark") || !strings.Contains(joined, "lang=en") {
				t.Errorf("%s: the app's own cookies were lost: %q", path, got)
			}
		}
	}
	// A request whose only cookie is the session carries no Cookie header.
	if r := do(t, "GET", f.proxy.URL+"/public/x", map[string]string{"Cookie": plain.Name + "=" + plain.Value, "X-Forwarded-For": "192.0.2.100"}, ""); r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if got := f.upstream.last().Header.Values("Cookie"); len(got) != 0 {
		t.Errorf("the app received Cookie %q", got)
	}
}

// upstreamSaw reports whether a secret appears anywhere in what the
// upstream received: the request line or any header.
func upstreamSaw(r *http.Request, secret string) bool {
	if strings.Contains(r.RequestURI, secret) || strings.Contains(r.URL.String(), secret) {
		return true
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(k+": "+v, secret) {
				return true
			}
			if b, ok := strings.CutPrefix(v, "Basic "); ok {
				if up, err := base64.StdEncoding.DecodeString(b); err == nil && strings.Contains(string(up), secret) {
					return true
				}
			}
		}
	}
	return false
}

// A live key never reaches the upstream: not on public or internal
// routes, where no key was needed, nor in a second header or the query
// beside the one the decision used.
func TestLiveKeysNeverReachTheUpstream(t *testing.T) {
	onProxyEdges(t, testLiveKeysNeverReachTheUpstream)
}

func testLiveKeysNeverReachTheUpstream(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge, trusted: []string{"127.0.0.1/32"}})
	basic, big, revoked := f.secrets["basic"], f.secrets["big"], f.secrets["revoked"]
	cases := []struct {
		name, path string
		headers    map[string]string
		secrets    []string
		keep       []string // what must still reach the upstream
	}{
		{"x-api-key on a public route", "/public/x", map[string]string{"X-API-Key": basic}, []string{basic}, nil},
		{"bearer on an internal route", "/internal/x", map[string]string{"Authorization": "Bearer " + basic}, []string{basic}, nil},
		{"query key on a public route", "/public/x?a=1&api_key=" + basic + "&b=2", nil, []string{basic}, []string{"a=1&b=2"}},
		{"query key with a percent-encoded name", "/public/x?api%5Fkey=" + basic + "&b=2", nil, []string{basic}, []string{"b=2"}},
		{"key as another query parameter", "/internal/x?token=" + basic, nil, []string{basic}, nil},
		{"revoked key on a public route", "/public/x", map[string]string{"X-API-Key": revoked}, []string{revoked}, nil},
		{"key in a custom header", "/public/x", map[string]string{"X-Custom-Token": basic, "X-Other": "kept"}, []string{basic}, []string{"kept"}},
		{"key as a basic-auth user", "/public/x", map[string]string{"Authorization": "Basic " + base64Basic(basic+":")}, []string{basic}, nil},
		{"key in a cookie", "/public/x", map[string]string{"Cookie": "theme=dark; token=" + big}, []string{big}, []string{"theme=dark"}},
		{"key in the referer's query", "/public/x", map[string]string{"Referer": "http://app.example/export/all?api_key=" + big + "&format=csv"}, []string{big}, []string{"format=csv"}},
		{"second key in bearer on a protected route", "/api/forms/1", map[string]string{"X-API-Key": basic, "Authorization": "Bearer " + big}, []string{basic, big}, nil},
		{"second key in the query on a protected route", "/api/forms/1?api_key=" + big, map[string]string{"X-API-Key": basic}, []string{basic, big}, nil},
		{"app's own bearer token is kept", "/api/forms/1", map[string]string{"X-API-Key": basic, "Authorization": "Bearer app-user-jwt"}, []string{basic}, []string{"Bearer app-user-jwt"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.headers == nil {
				c.headers = map[string]string{}
			}
			c.headers["X-Forwarded-For"] = "192.0.2." + strconv.Itoa(i+1) // one address each: no per-IP limit
			r := do(t, "GET", f.proxy.URL+c.path, c.headers, "")
			if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			got := f.upstream.last()
			for _, s := range c.secrets {
				if upstreamSaw(got, s) {
					t.Errorf("the upstream received a live key: %s %v", got.RequestURI, got.Header)
				}
			}
			for _, s := range c.keep {
				if !upstreamSaw(got, s) {
					t.Errorf("%q did not reach the upstream: %s %v", s, got.RequestURI, got.Header)
				}
			}
		})
	}
}

func base64Basic(userPass string) string { return base64.StdEncoding.EncodeToString([]byte(userPass)) }
