package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// The sidecar proxy on both edges, over raw sockets: what the request
// parser decides (smuggling, folding, old clients, pipelining, sizes,
// Expect) is decided alike, and what reaches the upstream is only what
// was decided. On fasthttp the common request takes the lean path and
// the rest is handed with its connection to net/http (api/fastedge), so
// the cases mix both on one connection.
func TestProxyEdgesParseAlike(t *testing.T) { onProxyEdges(t, testProxyEdgesParseAlike) }

func testProxyEdgesParseAlike(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	addr := f.proxy.Addr
	key := f.secrets["bench"] // unlimited: no case runs out of tokens
	withKey := "X-Api-Key: " + key + "\r\n"
	get := func(path, extra string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + withKey + extra + "\r\n"
	}
	post := func(path, extra, body string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + withKey + extra + "\r\n" + body
	}
	chunked := func(body string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body) }
	big := strings.Repeat("GET / HTTP/1.1\r\n", 100<<10/16) // a body over the lean path's 64 KiB that reads as requests
	closing := "Connection: close\r\n"
	cases := []struct {
		name string
		raw  string
		want []string
		// upstream is what the upstream saw, "METHOD path body-length" each.
		upstream []string
		// wantFast and upstreamFast, when set, are the fasthttp edge's.
		wantFast, upstreamFast []string
	}{
		{"a lean request", get("/api/forms/1", closing), []string{"200 "}, []string{"GET /api/forms/1 0"}, nil, nil},
		{"pipelined, lean and handed off", get("/api/forms/1", "") + post("/api/forms/up", "Transfer-Encoding: chunked\r\n", chunked("hello")) +
			get("/api/forms/2", "") + post("/api/forms/big", fmt.Sprintf("Content-Length: %d\r\n", len(big)), big) + get("/api/forms/3", closing),
			[]string{"200 ", "200 ", "200 ", "200 ", "200 "},
			[]string{"GET /api/forms/1 0", "POST /api/forms/up 5", "GET /api/forms/2 0", fmt.Sprintf("POST /api/forms/big %d", len(big)), "GET /api/forms/3 0"}, nil, nil},
		{"duplicate Content-Length that differ", post("/api/forms/1", "Content-Length: 2\r\nContent-Length: 3\r\n", "abc"),
			[]string{"400"}, nil, nil, nil},
		// Both read the body as chunked, so nothing is smuggled: the
		// request after it is decided (net/http) or never read (fasthttp
		// closes the connection, RFC 9112, 6.3).
		{"Content-Length and chunked", post("/api/forms/1", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", chunked("hello")) + get("/admin/smuggled", closing),
			[]string{"200 ", "403 INSUFFICIENT_SCOPE"}, []string{"POST /api/forms/1 5"}, []string{"200 "}, nil},
		{"Transfer-Encoding other than chunked", post("/api/forms/1", "Transfer-Encoding: gzip, chunked\r\n"+closing, "0\r\n\r\n"),
			[]string{"501"}, nil, nil, nil},
		// Both unfold the value: the key is read as "<key> folded", which
		// no key is.
		{"obs-fold", "GET /api/forms/1 HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + key + "\r\n\tfolded\r\n" + closing + "\r\n",
			[]string{"401 NOT_FOUND"}, nil, nil, nil},
		{"space before the colon", get("/public/x", "X-Foo : bar\r\n"+closing), []string{"400"}, nil, nil, nil},
		// Both refuse these: fasthttp's parser itself, and the lean path's
		// own check (api/fastedge/proxy.go) if a parser ever let one by.
		{"a control byte in a header value", get("/api/forms/1", "X-Foo: a\x01b\r\n"+closing), []string{"400"}, nil, nil, nil},
		{"a header name that is not a token", get("/api/forms/1", "X(Foo): bar\r\n"+closing), []string{"400"}, nil, nil, nil},
		{"HTTP/1.0 without keep-alive", "GET /api/forms/1 HTTP/1.0\r\n" + withKey + "\r\n" + get("/api/forms/smuggled", ""),
			[]string{"200 "}, []string{"GET /api/forms/1 0"}, nil, nil},
		{"HTTP/1.0 keep-alive", "GET /api/forms/1 HTTP/1.0\r\nConnection: keep-alive\r\n" + withKey + "\r\n" + get("/api/forms/2", closing),
			[]string{"200 ", "200 "}, []string{"GET /api/forms/1 0", "GET /api/forms/2 0"}, nil, nil},
		{"Expect: 100-continue", post("/api/forms/1", "Expect: 100-continue\r\nContent-Length: 5\r\n"+closing, "hello"),
			[]string{"100", "200 "}, []string{"POST /api/forms/1 5"}, nil, nil},
		{"headers over max_header_bytes", get("/api/forms/1", "X-Big: "+strings.Repeat("a", 10<<10)+"\r\n"+closing),
			[]string{"431 HEADERS_TOO_LARGE"}, nil, nil, nil},
		{"headers over the server's buffer", get("/api/forms/1", "X-Big: "+strings.Repeat("a", 40<<10)+"\r\n"+closing),
			[]string{"431"}, nil, nil, nil},
		// The header the fasthttp edge defers a body with (api/fastedge/defer.go),
		// sent by a client: its body still reaches the upstream whole.
		{"a client's Apiwarden-Deferred-Framing", post("/api/forms/1", "Apiwarden-Deferred-Framing: x -1\r\nContent-Length: 5\r\n"+closing, "hello"),
			[]string{"200 "}, []string{"POST /api/forms/1 5"}, nil, nil},
		{"upload without a key", fmt.Sprintf("POST /api/forms/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", len(big)) + big,
			[]string{"401 MISSING_KEY"}, nil, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.upstream.count()
			got := exchangeInterim(t, addr, c.raw)
			want, upstream := c.want, c.upstream
			if fasthttpReads(edge) && c.wantFast != nil {
				want = c.wantFast
			}
			if fasthttpReads(edge) && c.upstreamFast != nil {
				upstream = c.upstreamFast
			}
			wantExchange(t, got, want...)
			var saw []string
			for _, r := range f.upstream.since(before) {
				b, _ := io.ReadAll(r.Body)
				saw = append(saw, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, len(b)))
			}
			if strings.Join(saw, "; ") != strings.Join(upstream, "; ") {
				t.Fatalf("upstream saw\n  %s\nwant\n  %s", strings.Join(saw, "; "), strings.Join(upstream, "; "))
			}
		})
	}
}

// exchangeInterim writes raw to addr and reads every answer, 1xx
// included, until the server closes. The connection is not half-closed:
// the proxy reads a client's EOF as the client going away and cancels
// the request, so every case ends it with Connection: close or with what
// the server refuses.
func exchangeInterim(t *testing.T, addr, raw string) []exchanged {
	t.Helper()
	conn := edgetest.Dial(t, addr)
	go io.WriteString(conn, raw)
	return readAnswers(t, conn)
}

// A large upload reaches the upstream while it is still being sent: the
// upstream gets the first part of the body before the client sends the
// rest, on both edges, so no edge holds a whole upload in memory.
func TestProxyEdgesStreamUploads(t *testing.T) { onProxyEdges(t, testProxyEdgesStreamUploads) }

func testProxyEdgesStreamUploads(t *testing.T, edge string) {
	const part = 1 << 20
	firstPart := make(chan struct{})
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadFull(r.Body, make([]byte, part)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		close(firstPart)
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", part+n)
	})
	px := openProxy(t, edge, up.URL, 0)
	for _, framing := range []string{"chunked", "Content-Length"} {
		t.Run(framing, func(t *testing.T) {
			firstPart = make(chan struct{})
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", px.URL+"/upload", pr)
			if framing == "Content-Length" {
				req.ContentLength = 4 * part
			}
			go func() {
				chunk := make([]byte, part)
				pw.Write(chunk) // the first part
				select {
				case <-firstPart:
				case <-time.After(10 * time.Second):
					pw.CloseWithError(fmt.Errorf("the upstream did not get the first part before the rest was sent"))
					return
				}
				for range 3 {
					pw.Write(chunk)
				}
				pw.Close()
			}()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != fmt.Sprint(4*part) {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
		})
	}
}

// On shutdown the proxy stops taking connections and answers a request in
// flight — on fasthttp one handed to net/http (Expect: 100-continue, its
// body still arriving) — before it stops.
func TestProxyEdgesDrainOnShutdown(t *testing.T) { onProxyEdges(t, testProxyEdgesDrainOnShutdown) }

func testProxyEdgesDrainOnShutdown(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	addr := f.proxy.Addr
	conn := edgetest.Dial(t, addr)
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	body := "hello"
	head := fmt.Sprintf("POST /api/forms/1 HTTP/1.1\r\nHost: x\r\nX-Api-Key: %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", f.secrets["bench"], len(body))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if fasthttpReads(edge) {
		// fasthttp answers 100 Continue when it has read the headers;
		// net/http when the proxy reads the body, which waits below.
		if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("want 100 Continue, got %q %v", line, err)
		}
		br.ReadString('\n')
	}
	// On net/http nothing says the headers were read; either way the
	// connection is not idle, so the drain must wait for it. A second
	// connection's answer shows the server serving before it drains.
	if r := do(t, "GET", f.proxy.URL+"/public/x", nil, ""); r.status != 200 {
		t.Fatalf("second connection: %d", r.status)
	}
	drained := startShutdown(t, f.proxy)
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("the request in flight was not answered: %v", err)
		}
		if resp.StatusCode >= 200 {
			break
		}
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("request in flight: %d %s", resp.StatusCode, b)
	}
	if err := <-drained; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// A client that sends its headers a byte at a time is cut off at
// read_header_timeout (2 s here) by the proxy, on both edges.
func TestProxyEdgesCutOffSlowHeaders(t *testing.T) { onProxyEdges(t, testProxyEdgesCutOffSlowHeaders) }

func testProxyEdgesCutOffSlowHeaders(t *testing.T, edge string) {
	f := newGateFixture(t, gateConfig{proxyEdge: edge})
	trickleUntilCut(t, f.proxy.Addr, "GET /public/x HTTP/1.1\r\nHost: x\r\nX-A: "+strings.Repeat("a", 200))
}

// A client that sends Expect: 100-continue gets one 100 Continue, on both
// edges: the proxy's server sends its own when the body is first read, so
// an upstream's 100 is not passed on.
// The upstream here answers 100 Continue only once the body has come (a
// slow one; on net/http the proxy sends the body after
// ExpectContinueTimeout, 1 s): passing its 100 on gave the client two,
// which is what a race between the two used to do now and then.
func TestProxyEdgesOneContinue(t *testing.T) { onProxyEdges(t, testProxyEdgesOneContinue) }

func testProxyEdgesOneContinue(t *testing.T, edge string) {
	up := edgetest.RawUpstream(t, func(conn net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		fmt.Fprintf(conn, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	})
	px := openProxy(t, edge, up, 0)
	got := exchangeInterim(t, px.Addr, "POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	wantExchange(t, got, "100", "200")
}
