package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
	conn, err := net.Dial("tcp", strings.TrimPrefix(serverURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
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

// The identity headers apiwarden adds reach the upstream whatever the
// client's Connection header names, on both forwarding paths.
func TestConnectionHeaderCannotDropIdentityHeaders(t *testing.T) {
	f := newGateFixture(t, gateConfig{})
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
	f := newGateFixture(t, gateConfig{})
	spoofed := "X_Apiwarden_Owner: org_admin\r\nx_apiwarden_scopes: admin\r\nX-APIWARDEN_TIER: enterprise\r\n" +
		"X_apiwarden-Key_Id: spoofed\r\nX-Apiwarden_Code: VALID\r\nX-Apiwarden-Owner: org_admin\r\n"
	cases := []struct {
		name, path, key string
		want            map[string]string
	}{
		{"public route", "/public/x", "", map[string]string{"X-Apiwarden-Tier": "free"}},
		{"protected route", "/api/forms/1", "basic", map[string]string{"X-Apiwarden-Key-Id": f.ids["basic"], "X-Apiwarden-Owner": "org_b",
			"X-Apiwarden-Tier": "basic", "X-Apiwarden-Scopes": "forms:read"}},
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
