package loopedge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/fastedge"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/metrics"
)

// The header contract with keys, limits and refusals is tested on the
// real application by api's proxy tests, which run on every edge
// (api/edges_test.go); these tests are the loop's
// own: keep-alive, bodies, HEAD, the records, the shapes it refuses.

// startProxy serves the loops in front of upstream, every path an
// internal route (no key, no limit), every request recorded.
func startProxy(t *testing.T, upstream string) (addr string, recs *edgetest.Records) {
	return startProxyWith(t, upstream, false)
}

// startProxyWith is startProxy, with the fasthttp edge for hand-offs when
// handoff is true.
func startProxyWith(t *testing.T, upstream string, handoff bool) (addr string, recs *edgetest.Records) {
	t.Helper()
	addr, recs, _ = startLoops(t, upstream, handoff, gateway.ProxyOptions{ResponseHeaderTimeout: 5 * time.Second}, 0)
	return addr, recs
}

// startLoops is startProxyWith with the proxy options o and that many
// loops (0: GOMAXPROCS).
func startLoops(t testing.TB, upstream string, handoff bool, o gateway.ProxyOptions, loops int) (addr string, recs *edgetest.Records, s *Server) {
	t.Helper()
	recs = &edgetest.Records{}
	s = newProxy(t, upstream, handoff, recs, o, loops)
	return edgetest.Serve(t, s.Serve, s.Close), recs, s
}

// newProxy is the server startLoops serves, its records to recs.
func newProxy(t testing.TB, upstream string, handoff bool, recs gateway.RequestRecorder, o gateway.ProxyOptions, loops int) *Server {
	t.Helper()
	routes, err := enforce.NewRoutes(nil, enforce.Route{Preset: enforce.Internal})
	if err != nil {
		t.Fatal(err)
	}
	o.Upstream, _ = url.Parse(upstream)
	gw := gateway.New(gateway.Options{Gate: gateway.GateOptions{Engine: enforce.NewEngine(nil, nil, enforce.Policy{Routes: routes}),
		Recorder: recs, InternalSampleRate: 1, MaxHeaderBytes: 8 << 10}, Proxy: o})
	o2 := Options{Gateway: gw, MaxHeaderBytes: 8 << 10, Loops: loops, Timeouts: Timeouts{ReadHeader: 5 * time.Second, Idle: 5 * time.Second, Write: 5 * time.Second}}
	if handoff {
		o2.Handoff = fastedge.New(fastedge.Options{Gateway: gw, Fallback: gw.Handler(), MaxHeaderBytes: 8 << 10,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second})
	}
	s, err := New(o2)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// echo answers with the method, path and body it got, and a header that
// says which request headers it saw.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Saw-Forwarded-For", r.Header.Get("X-Forwarded-For"))
	w.Header().Set("X-Saw-Custom", r.Header.Get("X-Custom"))
	w.Header().Set("Cache-Status", "origin; hit")
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), body)
}

// TestKeepAliveBodiesAndHead: one connection carries many requests,
// GETs, POSTs with bodies and HEADs, each answered whole and recorded
// once.
func TestKeepAliveBodiesAndHead(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	addr, recs := startProxy(t, up.URL)
	conn := edgetest.Dial(t, addr)
	br := bufio.NewReader(conn)
	const rounds = 50
	for i := range rounds {
		var req *http.Request
		switch i % 3 {
		case 0:
			req, _ = http.NewRequest("GET", "http://x/get/"+fmt.Sprint(i)+"?q=1", nil)
		case 1:
			req, _ = http.NewRequest("POST", "http://x/post", strings.NewReader(strings.Repeat("b", i*40)))
		case 2:
			req, _ = http.NewRequest("HEAD", "http://x/head", nil)
		}
		req.Header.Set("X-Custom", "c"+fmt.Sprint(i))
		resp, body, err := roundTrip(t, conn, br, req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, err)
		}
		if got := resp.Header.Get("X-Saw-Custom"); got != "c"+fmt.Sprint(i) {
			t.Errorf("request %d: upstream saw X-Custom %q", i, got)
		}
		if resp.Header.Get("X-Saw-Forwarded-For") != "127.0.0.1" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("request %d: forwarding headers %q", i, resp.Header)
		}
		want := ""
		switch i % 3 {
		case 0:
			want = fmt.Sprintf("GET /get/%d?q=1 ", i)
		case 1:
			want = "POST /post " + strings.Repeat("b", i*40)
		}
		if string(body) != want {
			t.Errorf("request %d: body %q, want %q", i, body, want)
		}
		if i%3 == 2 && resp.ContentLength <= 0 {
			t.Errorf("HEAD %d: Content-Length %d, want the GET's", i, resp.ContentLength)
		}
	}
	edgetest.Poll(t, 10*time.Second, "the records", func() bool { return len(recs.All()) >= rounds })
	all := recs.All()
	if len(all) != rounds {
		t.Fatalf("%d records for %d requests", len(all), rounds)
	}
	if r := all[1]; r.Method != "POST" || r.Status != 200 || r.ResponseBytes != int64(len("POST /post ")+40) || r.CacheStatus != metrics.CacheHit {
		t.Errorf("record of the first POST: %+v", r)
	}
}

// TestRefusedShapes: a head the loop does not serve is answered and its
// connection closed; the next connection is served.
func TestRefusedShapes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	addr, recs := startProxy(t, up.URL)
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", 501},
		{"two lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\nX-A: a\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", 431}, // no CRLF CRLF within the limit once padded
		{"head too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if tc.name == "bare LF" {
				raw += strings.Repeat("a", 16<<10)
			}
			conn := edgetest.Dial(t, addr)
			if _, err := io.WriteString(conn, raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, tc.status)
			}
		})
	}
	if resp := edgetest.Get(t, addr, "/after"); resp.StatusCode != 200 {
		t.Fatalf("after the refusals: %d", resp.StatusCode)
	}
	if n := len(recs.All()); n > 1 {
		t.Errorf("%d records: a refused shape is not the gateway's request", n)
	}
}

// TestUpstreamClosesAfterAnswer: an upstream that closes after each
// answer (Connection: close) serves every request of a keep-alive
// client, the pair dialling again.
func TestUpstreamClosesAfterAnswer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	defer up.Close()
	addr, _ := startProxy(t, up.URL)
	conn := edgetest.Dial(t, addr)
	br := bufio.NewReader(conn)
	for i := range 5 {
		req, _ := http.NewRequest("GET", "http://x/", nil)
		resp, body, _ := roundTrip(t, conn, br, req)
		if resp.StatusCode != 200 || string(body) != "bye" || resp.Close {
			t.Fatalf("request %d: %d %q close %v", i, resp.StatusCode, body, resp.Close)
		}
	}
}

// TestUpstreamDown: a request whose upstream refuses the connection is
// answered 502 by the gateway and recorded.
func TestUpstreamDown(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echo))
	upURL := up.URL
	up.Close()
	addr, recs := startProxy(t, upURL)
	resp := edgetest.Get(t, addr, "/x")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d, headers %q", resp.StatusCode, resp.Header)
	}
	edgetest.Poll(t, 10*time.Second, "the record", func() bool { return len(recs.All()) == 1 })
}

// TestHandOff: with the fasthttp edge to hand to, the shapes the loop
// does not serve are served there, each recorded once, on the
// connection the loop accepted, after the lean requests before them.
func TestHandOff(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	addr, recs := startProxyWith(t, up.URL, true)
	for _, tc := range []struct{ name, raw, want string }{
		{"chunked", "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "POST /c abc"},
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: x\r\n\r\n", "GET /old "},
		{"large body", "PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("z", 70000), "PUT /big " + strings.Repeat("z", 70000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := edgetest.Dial(t, addr)
			br := bufio.NewReader(conn)
			// A lean request first: the hand-off comes after its answer.
			io.WriteString(conn, "GET /lean HTTP/1.1\r\nHost: x\r\n\r\n"+tc.raw)
			for _, want := range []string{"GET /lean ", tc.want} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(body) != want {
					t.Fatalf("%d %.60q, want %.60q", resp.StatusCode, body, want)
				}
			}
		})
	}
	edgetest.Poll(t, 10*time.Second, "the records", func() bool { return len(recs.All()) >= 6 })
	if n := len(recs.All()); n != 6 {
		t.Errorf("%d records for 6 requests", n)
	}
}

// TestChunkedAnswers: an upstream answer without a length (Go's net/http
// chunks a body over 2 KiB written without one, and every flushed
// stream) is relayed chunk by chunk, with the trailers it announced, on
// a connection that stays open; its record counts the body's bytes.
func TestChunkedAnswers(t *testing.T) {
	big := strings.Repeat("0123456789", 1000)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		if r.URL.Path == "/stream" {
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
			}
		} else {
			io.WriteString(w, big)
		}
		w.Header().Set("X-Sum", "42")
	}))
	defer up.Close()
	addr, recs := startProxy(t, up.URL)
	conn := edgetest.Dial(t, addr)
	br := bufio.NewReader(conn)
	for i, tc := range []struct{ path, want string }{{"/big", big}, {"/stream", "data: 0\n\ndata: 1\n\ndata: 2\n\n"}, {"/big", big}} {
		req, _ := http.NewRequest("GET", "http://x"+tc.path, nil)
		resp, body, err := roundTrip(t, conn, br, req)
		if err != nil || resp.StatusCode != 200 || string(body) != tc.want || resp.Close {
			t.Fatalf("request %d: %d %v close %v, body %d bytes", i, resp.StatusCode, err, resp.Close, len(body))
		}
		if len(resp.TransferEncoding) != 1 || resp.Trailer.Get("X-Sum") != "42" {
			t.Errorf("request %d: Transfer-Encoding %q, trailers %q", i, resp.TransferEncoding, resp.Trailer)
		}
	}
	edgetest.Poll(t, 10*time.Second, "the records", func() bool { return len(recs.All()) >= 3 })
	if r := recs.All()[0]; r.ResponseBytes != int64(len(big)) || r.Status != 200 {
		t.Errorf("record of the chunked answer: %+v", r)
	}
}

// TestAnswersInPieces: an answer the upstream writes a byte at a time,
// its head, chunk lines, trailers and a close-framed body split across
// reads anywhere, is relayed whole, with its trailers.
func TestAnswersInPieces(t *testing.T) {
	for _, tc := range []struct{ name, answer, body, trailer string }{
		{"chunked with a trailer", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 42\r\n\r\n", "hello, world", "42"},
		{"framed by close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, world", "hello, world", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := edgetest.RawUpstream(t, func(conn net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				for i := range len(tc.answer) {
					if _, err := io.WriteString(conn, tc.answer[i:i+1]); err != nil {
						return
					}
				}
			})
			addr, recs := startProxy(t, up)
			conn := edgetest.Dial(t, addr)
			req, _ := http.NewRequest("GET", "http://x/", nil)
			resp, body, err := roundTrip(t, conn, bufio.NewReader(conn), req)
			if err != nil || string(body) != tc.body || resp.Trailer.Get("X-Sum") != tc.trailer {
				t.Fatalf("%v %q, trailers %q", err, body, resp.Trailer)
			}
			if r := recs.Last(t, 1); r.Status != 200 || r.ResponseBytes != int64(len(tc.body)) {
				t.Errorf("record: %d, %d bytes", r.Status, r.ResponseBytes)
			}
		})
	}
}

// roundTrip sends req on conn and reads its answer from br: the answer
// and its body, with the body's read error.
func roundTrip(t *testing.T, conn io.Writer, br *bufio.Reader, req *http.Request) (*http.Response, []byte, error) {
	t.Helper()
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}
