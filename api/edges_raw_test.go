package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// The edges that serve forward auth and check on the enforcement listener;
// each raw-socket test below runs on both, with the same expectations.
var rawEdges = []string{"net/http", "fasthttp", "fasthttp, reduce_idle_memory"}

// exchanged is one answer read off a raw connection.
type exchanged struct {
	proto  string
	status int
	code   string // X-Apiwarden-Code, else the error body's code
	rid    string // X-Request-Id
}

// String is the status and code. The protocol is left out: net/http
// answers an HTTP/1.0 request in HTTP/1.0, fasthttp in HTTP/1.1, and both
// are allowed (RFC 9110, 6.2).
func (e exchanged) String() string { return fmt.Sprintf("%d %s", e.status, e.code) }

// exchange writes raw bytes to addr, closes its side for writing (so the
// server sees the client is done once it has read everything) and reads
// answers until the server closes the connection. It fails the test when
// the server neither answers nor closes within 10 s.
func exchange(t *testing.T, addr, raw string) []exchanged {
	t.Helper()
	conn := edgetest.Dial(t, addr)
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	return readAnswers(t, conn)
}

// readAnswers reads answers off conn, 1xx included, until the server
// closes it.
func readAnswers(t *testing.T, conn net.Conn) []exchanged {
	t.Helper()
	br := bufio.NewReader(conn)
	var got []exchanged
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server neither answered nor closed within 10 s; answers so far %v", got)
			}
			return got
		}
		e := exchanged{proto: resp.Proto, status: resp.StatusCode, code: resp.Header.Get("X-Apiwarden-Code"), rid: resp.Header.Get("X-Request-Id")}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if e.code == "" {
			var eb errorBody
			if json.Unmarshal(body, &eb) == nil {
				e.code = eb.Error.Code
			}
		}
		got = append(got, e)
	}
}

// wantExchange compares answers with want, "status code" each, or
// "status" alone where the code is not asked: the server's own refusals
// of what it cannot parse carry none on net/http (a text body) and the
// JSON error body on fasthttp.
func wantExchange(t *testing.T, got []exchanged, want ...string) {
	t.Helper()
	var g []string
	for i, e := range got {
		if i < len(want) && !strings.Contains(want[i], " ") {
			g = append(g, fmt.Sprint(e.status))
			continue
		}
		g = append(g, e.String())
	}
	if strings.Join(g, "; ") != strings.Join(want, "; ") {
		t.Fatalf("answers\n  %s\nwant\n  %s", strings.Join(g, "; "), strings.Join(want, "; "))
	}
}

// What the request parser decides (smuggling, folding, old clients,
// pipelining, sizes) is decided alike on both edges.
func TestEdgesParseAlike(t *testing.T) {
	for _, edge := range rawEdges {
		t.Run(edge, func(t *testing.T) {
			f := newGateFixture(t, gateConfig{edge: edge})
			addr := strings.TrimPrefix(f.admin.URL, "http://")
			check := func(extra, body string) string {
				return "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra + "\r\n" + body
			}
			key := f.secrets["bench"] // unlimited: no case runs out of tokens
			checkBody := `{"key":"` + key + `","path":"/api/forms/1"}`
			authorize := func(uri, extra string) string {
				return "GET /v1/authorize HTTP/1.1\r\nHost: x\r\nX-Original-URI: " + uri + "\r\n" + extra + "\r\n"
			}
			withKey := "X-Api-Key: " + key + "\r\n"
			smuggled := authorize("/api/forms/smuggled", withKey)
			cases := []struct {
				name string
				raw  string
				want []string
				// wantFast, when set, is what the fasthttp edge answers instead.
				wantFast []string
			}{
				{"a check", check(fmt.Sprintf("Content-Length: %d\r\n", len(checkBody)), checkBody),
					[]string{"200 "}, nil},
				{"duplicate Content-Length that differ", check("Content-Length: 20\r\nContent-Length: 21\r\n", checkBody+" "),
					[]string{"400"}, nil},
				// Both read the body as chunked, so nothing is smuggled; net/http
				// then reads on, fasthttp closes the connection as RFC 9112, 6.3
				// asks of a server that got both.
				{"Content-Length and chunked", check("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
					fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(checkBody), checkBody)+smuggled),
					[]string{"200 ", "200 VALID"}, []string{"200 "}},
				{"chunked body", check("Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(checkBody), checkBody)),
					[]string{"200 "}, nil},
				{"Transfer-Encoding other than chunked", check("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
					[]string{"501"}, nil},
				// Both unfold the value (RFC 9112, 5.2 allows it): the key is
				// read as "wsk_x folded", which no key is.
				{"obs-fold", authorize("/api/forms/1", "X-Api-Key: wsk_x\r\n\tfolded\r\n"),
					[]string{"401 NOT_FOUND"}, nil},
				{"space before the colon", authorize("/public/x", "X-Api-Key : wsk_x\r\n"),
					[]string{"400"}, nil},
				{"HTTP/1.0 without keep-alive", "GET /v1/authorize HTTP/1.0\r\nX-Original-URI: /api/forms/1\r\n" + withKey + "\r\n" + smuggled,
					[]string{"200 VALID"}, nil},
				{"pipelined", authorize("/api/forms/a", withKey) + authorize("/api/forms/1", "") + authorize("/api/forms/b", withKey+"Connection: close\r\n"),
					[]string{"200 VALID", "401 MISSING_KEY", "200 VALID"}, nil},
				// Envoy's ext_authz may send the original body along: it is
				// read and not looked at, and the next request follows it.
				{"authorize with a body", "POST /v1/authorize HTTP/1.1\r\nHost: x\r\nX-Original-URI: /api/forms/1\r\n" + withKey +
					fmt.Sprintf("Content-Length: %d\r\n\r\n", 100<<10) + strings.Repeat("GET / HTTP/1.1\r\n", 100<<10/16) + authorize("/api/forms/2", withKey+"Connection: close\r\n"),
					[]string{"200 VALID", "200 VALID"}, nil},
				{"headers over max_header_bytes", authorize("/api/forms/1", withKey+"X-Big: "+strings.Repeat("a", 10<<10)+"\r\n"),
					[]string{"431 HEADERS_TOO_LARGE"}, nil},
				{"headers over the server's buffer", authorize("/api/forms/1", withKey+"X-Big: "+strings.Repeat("a", 40<<10)+"\r\n"),
					[]string{"431"}, nil},
				{"Envoy form, HEAD", "HEAD /v1/authorize/api/forms/1 HTTP/1.1\r\nHost: x\r\n" + withKey + "Connection: close\r\n\r\n",
					[]string{"200 VALID"}, nil},
				{"unknown method goes to the router", "BREW /v1/authorize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
					[]string{"405 METHOD_NOT_ALLOWED"}, nil},
				{"unknown path", "GET /v1/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
					[]string{"404 ROUTE_NOT_FOUND"}, nil},
				{"absolute-form target", "GET http://x/v1/authorize HTTP/1.1\r\nHost: x\r\nX-Original-URI: /api/forms/1\r\n" + withKey + "Connection: close\r\n\r\n",
					[]string{"200 VALID"}, nil},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					got := exchange(t, addr, c.raw)
					want := c.want
					if strings.HasPrefix(edge, "fasthttp") && c.wantFast != nil {
						want = c.wantFast
					}
					wantExchange(t, got, want...)
					seen := map[string]bool{}
					for _, e := range got {
						if e.status < 400 && (e.rid == "" || seen[e.rid]) {
							t.Fatalf("answer without its own X-Request-Id: %+v", got)
						}
						seen[e.rid] = true
					}
				})
			}
		})
	}
}

// A client that sends its headers a byte at a time is cut off at
// read_header_timeout (2 s here), not when it is done.
func TestEdgesCutOffSlowHeaders(t *testing.T) {
	for _, edge := range rawEdges {
		t.Run(edge, func(t *testing.T) {
			t.Parallel()
			f := newGateFixture(t, gateConfig{edge: edge})
			trickleUntilCut(t, f.admin.Addr, authorizeHeaderTrickle)
		})
	}
}

// trickleUntilCut sends request to addr a byte every 200 ms, over and
// over, and fails unless the server closes the connection within 20 s
// (10x read_header_timeout).
func trickleUntilCut(t *testing.T, addr, request string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		io.Copy(io.Discard, conn) // until the server closes (a 408 first is allowed)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-closed:
			return
		case <-time.After(200 * time.Millisecond): // the trickle's pace, not a wait for the server
		}
		if time.Now().After(deadline) {
			t.Fatalf("still connected after 20 s of a header byte every 200 ms (read_header_timeout %s)", edgeTimeouts.readHeader)
		}
		if _, err := conn.Write([]byte{request[i%len(request)]}); err != nil {
			<-closed
			return
		}
	}
}

// authorizeHeaderTrickle is a header that never ends: "X-A: aaa…".
const authorizeHeaderTrickle = "GET /v1/authorize HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// On shutdown the edge stops taking connections at once and answers a
// check that is in flight (its body still arriving) before it stops.
func TestEdgesDrainOnShutdown(t *testing.T) {
	for _, edge := range rawEdges {
		t.Run(edge, func(t *testing.T) {
			f := newGateFixture(t, gateConfig{edge: edge})
			addr := f.admin.Addr
			conn := edgetest.Dial(t, addr)
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			body := `{"key":"` + f.secrets["basic"] + `","path":"/api/forms/1"}`
			head := fmt.Sprintf("POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			// 100 Continue says the server has read the headers and waits
			// for the body: the request is in flight.
			br := bufio.NewReader(conn)
			if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
				t.Fatalf("want 100 Continue, got %q %v", line, err)
			}
			if line, err := br.ReadString('\n'); err != nil || line != "\r\n" {
				t.Fatalf("100 Continue has headers: %q %v", line, err)
			}

			drained := startShutdown(t, f.admin)
			if _, err := io.WriteString(conn, body); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the check in flight was not answered: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"allowed":true`) {
				t.Fatalf("check in flight: %d %s", resp.StatusCode, b)
			}
			if err := <-drained; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		})
	}
}

// startShutdown drains srv as app.Run does on SIGTERM and returns once it
// no longer takes connections, failing the test if the drain has ended
// already (a request is in flight) or new connections are still taken
// 10 s into it. Shutdown's error arrives on the channel.
func startShutdown(t *testing.T, srv *edgeServer) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	drained := make(chan error, 1)
	go func() { drained <- srv.shutdown(ctx) }()
	refusedBy := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(refusedBy) {
			t.Fatal("new connections still accepted 10 s into the shutdown")
		}
		time.Sleep(20 * time.Millisecond) // polling for the listener to close
	}
	select {
	case err := <-drained:
		t.Fatalf("shutdown returned (%v) with a request in flight", err)
	default:
	}
	return drained
}

// The client address comes from X-Forwarded-For only when the socket peer
// is a trusted proxy, on both edges.
func TestEdgesTrustForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, edge := range rawEdges {
		t.Run(edge, func(t *testing.T) {
			for _, trusted := range []bool{false, true} {
				gc := gateConfig{edge: edge}
				if trusted {
					gc.trusted = []string{"127.0.0.1/32"}
				}
				f := newGateFixture(t, gc)
				h := map[string]string{"X-API-Key": f.secrets["bound"], "X-Original-URI": "/api/forms/1", "X-Forwarded-For": "6.6.6.6, 198.51.100.9"}
				r := do(t, "GET", f.admin.URL+"/v1/authorize", h, "")
				if trusted && r.status != 200 {
					t.Fatalf("behind a trusted proxy: %d %s", r.status, r.body)
				}
				if !trusted {
					checkError(t, r, 403, "IP_NOT_ALLOWED")
				}
				body := `{"key":"` + f.secrets["bound"] + `","path":"/api/forms/1"}`
				r = do(t, "POST", f.admin.URL+"/v1/check", map[string]string{"X-Forwarded-For": "198.51.100.9"}, body)
				if r.status != 200 || !strings.Contains(string(r.body), `"IP_NOT_ALLOWED"`) {
					t.Fatalf("check reads the ip field, never X-Forwarded-For: %d %s", r.status, r.body)
				}
			}
		})
	}
}
