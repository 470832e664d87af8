// Package edgetest holds what tests of apiwarden's listeners share: a
// free loopback address, a server on a listener of its own, raw HTTP over
// a TCP connection, polling until a condition holds, an upstream that
// counts its connections, one that answers by hand on the raw
// connection, and a key made through the admin API.
//
// Every helper takes the test and fails it on an error; what it opens
// closes when the test ends (t.Cleanup):
//
//	addr := edgetest.Serve(t, srv.Serve, srv.Close)
//	resp := edgetest.Get(t, addr, "/x")
//	edgetest.Poll(t, 10*time.Second, "the record", func() bool { return stored() == 1 })
//
// Nothing here sleeps to wait for a server: Poll checks a condition every
// PollInterval, and the connections carry deadlines so a server that
// never answers fails the test instead of hanging it.
package edgetest

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ExchangeTimeout bounds a raw connection's whole exchange (Dial): a
// server that neither answers nor closes within it fails the test.
const ExchangeTimeout = 10 * time.Second

// PollInterval is how often Poll checks its condition.
const PollInterval = 10 * time.Millisecond

// FreeAddr returns a loopback address ("127.0.0.1:port") that was free a
// moment ago, for a server that must be told its address before it binds.
// Another process may take the port meanwhile; where the test can hand
// over a listener, Serve is the safer way.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort is the port of FreeAddr.
func FreePort(t testing.TB) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	return port
}

// Serve runs serve on a new loopback listener in a goroutine of its own
// and returns the listener's address. When the test ends it calls stop
// and waits for serve to return; an error from serve other than a closed
// listener or server (net.ErrClosed, http.ErrServerClosed) fails the test.
func Serve(t testing.TB, serve func(net.Listener) error, stop func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- serve(ln) }()
	t.Cleanup(func() {
		stop()
		ln.Close() // in case serve returned early and left it open
		if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Dial connects to addr ("host:port", or an http:// URL's host) with
// ExchangeTimeout for the whole exchange, and closes the connection when
// the test ends.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(ExchangeTimeout))
	return conn
}

// SendGet writes "GET path" with Host app.example by hand on a new
// connection from Dial and returns the connection, its answer unread.
func SendGet(t testing.TB, addr, path string) net.Conn {
	t.Helper()
	conn := Dial(t, addr)
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: app.example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// Get sends GET path as SendGet does and reads the answer's head exactly
// as the server sent it (no client library between); the body is left
// to read.
func Get(t testing.TB, addr, path string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(SendGet(t, addr, path)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Poll calls cond every PollInterval until it holds, and returns how long
// that took; it fails the test ("what: not within d") when d passes first.
func Poll(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(PollInterval)
	}
	return time.Since(start)
}

// CountingUpstream is a loopback HTTP server (an app behind the proxy)
// that counts the connections opened to it and those closed. The counts
// are safe to read while it serves.
type CountingUpstream struct {
	*httptest.Server
	Conns, Closed atomic.Int64
}

// NewCountingUpstream starts a CountingUpstream answering with h; it
// closes when the test ends.
func NewCountingUpstream(t testing.TB, h http.HandlerFunc) *CountingUpstream {
	u := &CountingUpstream{}
	u.Server = httptest.NewUnstartedServer(h)
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.Conns.Add(1)
		case http.StateClosed:
			u.Closed.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// Open is how many of the upstream's connections are open now.
func (u *CountingUpstream) Open() int64 { return u.Conns.Load() - u.Closed.Load() }

// Key is the admin API's answer to a key creation.
type Key struct {
	Key struct {
		ID   string `json:"id"`
		Tier string `json:"tier"`
	} `json:"key"`
	Secret string `json:"secret"` // shown once, at creation
}

// CreateKey creates a key through the admin API at adminURL
// ("http://host:port") with the admin token and the JSON params of
// POST /admin/v1/keys, and fails the test unless it is created. client
// nil is a client with a 20 s timeout.
func CreateKey(t testing.TB, client *http.Client, adminURL, token, params string) Key {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	req, err := http.NewRequest("POST", adminURL+"/admin/v1/keys", strings.NewReader(params))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("creating a key: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var k Key
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &k) != nil || k.Secret == "" || k.Key.ID == "" {
		t.Fatalf("creating a key: status %d: %s", resp.StatusCode, body)
	}
	return k
}

// RawUpstream serves each connection to its address with answer, on a
// goroutine of its own, within ExchangeTimeout, and closes the connection
// after; it stops with the test. Its address is an http:// URL.
func RawUpstream(t testing.TB, answer func(conn net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(ExchangeTimeout))
				answer(conn)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// AnswerEach returns a RawUpstream answer that reads one request and
// writes reply, bytes as given.
func AnswerEach(reply string) func(net.Conn) {
	return func(conn net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
			return
		}
		io.WriteString(conn, reply)
	}
}
