package api

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type countingServer struct {
	*httptest.Server
	conns atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	cs := &countingServer{}
	cs.Server = httptest.NewUnstartedServer(h)
	cs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cs.conns.Add(1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

func newTestTransport(t *testing.T, rawURL string, headerTimeout time.Duration) http.RoundTripper {
	u, _ := url.Parse(rawURL)
	return newUpstreamTransport(u, &net.Dialer{Timeout: time.Second}, headerTimeout, time.Minute, 4, http.DefaultTransport)
}

func roundTrip(t *testing.T, rt http.RoundTripper, method, url, body string, readAll bool) (*http.Response, string, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	var b []byte
	if readAll {
		b, _ = io.ReadAll(resp.Body)
	} else {
		buf := make([]byte, 3)
		n, _ := resp.Body.Read(buf)
		b = buf[:n]
	}
	resp.Body.Close()
	return resp, string(b), nil
}

func TestUpstreamTransportReusesConnections(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
			return
		}
		if r.URL.Path == "/empty" {
			w.WriteHeader(204)
			return
		}
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
	})
	rt := newTestTransport(t, srv.URL, 0)
	cases := []struct{ method, path, body, want string }{
		{"GET", "/a", "", "GET /a "},
		{"POST", "/b", "payload", "POST /b payload"},
		{"GET", "/chunked", "", "part one, part two"},
		{"HEAD", "/a", "", ""},
		{"GET", "/empty", "", ""},
		{"GET", "/c", "", "GET /c "},
	}
	for _, c := range cases {
		_, got, err := roundTrip(t, rt, c.method, srv.URL+c.path, c.body, true)
		if err != nil || got != c.want {
			t.Fatalf("%s %s: %q %v, want %q", c.method, c.path, got, err, c.want)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential requests, want 1 reused", n)
	}
}

func TestUpstreamTransportRetriesAStaleConnection(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	rt := newTestTransport(t, srv.URL, 0)
	if _, got, err := roundTrip(t, rt, "GET", srv.URL+"/", "", true); err != nil || got != "ok" {
		t.Fatal(got, err)
	}
	srv.CloseClientConnections() // the pooled connection is now dead
	time.Sleep(20 * time.Millisecond)
	if _, got, err := roundTrip(t, rt, "GET", srv.URL+"/", "", true); err != nil || got != "ok" {
		t.Fatalf("GET on a stale connection was not retried: %q %v", got, err)
	}
	srv.CloseClientConnections()
	time.Sleep(20 * time.Millisecond)
	if _, _, err := roundTrip(t, rt, "POST", srv.URL+"/", "body", true); err == nil {
		t.Fatal("a POST with a body was replayed")
	}
}

func TestUpstreamTransportClosesAbandonedBodies(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 100)) })
	rt := newTestTransport(t, srv.URL, 0)
	for range 3 {
		if _, got, err := roundTrip(t, rt, "GET", srv.URL+"/", "", false); err != nil || got != "xxx" {
			t.Fatal(got, err)
		}
	}
	if n := srv.conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3: a half-read body must not be reused", n)
	}
}

func TestUpstreamTransportHeaderTimeout(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	})
	rt := newTestTransport(t, srv.URL, 50*time.Millisecond)
	_, _, err := roundTrip(t, rt, "GET", srv.URL+"/", "", true)
	var ne net.Error
	if err == nil || !asNetError(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
}

func asNetError(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}
