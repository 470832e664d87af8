package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// openProxy is a sidecar in front of upstream where every path is
// internal (no key, no limit): only forwarding is under test.
func openProxy(t *testing.T, edge, upstream string, headerTimeout time.Duration) *edgeServer {
	t.Helper()
	if headerTimeout == 0 {
		headerTimeout = 5 * time.Second
	}
	return openProxyWith(t, edge, upstream, gateway.ProxyOptions{DialTimeout: time.Second, ResponseHeaderTimeout: headerTimeout,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 4})
}

// openProxyWith is openProxy with the proxy options given.
func openProxyWith(t *testing.T, edge, upstream string, o gateway.ProxyOptions) *edgeServer {
	t.Helper()
	return openRecordedProxy(t, edge, upstream, o, nil)
}

// openRecordedProxy is openProxyWith recording every request with recs
// (nil: none).
func openRecordedProxy(t *testing.T, edge, upstream string, o gateway.ProxyOptions, recs gateway.RequestRecorder) *edgeServer {
	t.Helper()
	routes, err := enforce.NewRoutes(nil, enforce.Route{Preset: enforce.Internal})
	if err != nil {
		t.Fatal(err)
	}
	o.Upstream, _ = url.Parse(upstream)
	gate := gateway.GateOptions{Engine: enforce.NewEngine(nil, nil, enforce.Policy{Routes: routes})}
	if recs != nil {
		gate.Recorder, gate.InternalSampleRate = recs, 1
	}
	srv := api.New(api.Options{Gateway: gateway.Options{Gate: gate, Proxy: o}})
	return startEdge(t, edge, srv)
}

func TestForwardingReusesUpstreamConnections(t *testing.T) {
	onProxyEdges(t, testForwardingReusesUpstreamConnections)
}

func testForwardingReusesUpstreamConnections(t *testing.T, edge string) {
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/empty":
			w.WriteHeader(204)
		case "/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
		case "/early-hints":
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(103)
			io.WriteString(w, "after hints")
		default:
			body, _ := io.ReadAll(r.Body)
			io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		}
	})
	px := openProxy(t, edge, up.URL, 0)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	cases := []struct{ method, path, body, want string }{
		{"GET", "/a?x=1&y=2", "", "GET /a?x=1&y=2 "},
		{"POST", "/b", "payload", "POST /b payload"},
		{"PUT", "/c", "", "PUT /c "},
		{"GET", "/chunked", "", "part one, part two"},
		{"HEAD", "/a", "", ""},
		{"GET", "/empty", "", ""},
		{"GET", "/early-hints", "", "after hints"},
		{"GET", "/a%20b", "", "GET /a%20b "},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, px.URL+c.path, strings.NewReader(c.body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, b, c.want)
		}
	}
	resp, err := client.Get(px.URL + "/trailer")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer %q, want abc", got)
	}
	if n := up.Conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for sequential requests, want 1 reused", n)
	}
}

// TestForwardingBoundsUpstreamConnections sends eight requests at once
// through a proxy allowed two upstream connections: the upstream never
// sees more than two at a time, the others wait for a connection to come
// free rather than fail, and the two connections carry all eight.
func TestForwardingBoundsUpstreamConnections(t *testing.T) {
	onProxyEdges(t, testForwardingBoundsUpstreamConnections)
}

func testForwardingBoundsUpstreamConnections(t *testing.T, edge string) {
	release := make(chan struct{})
	var inside, most atomic.Int64
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		n := inside.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		inside.Add(-1)
		io.WriteString(w, "ok")
	})
	px := openProxyWith(t, edge, up.URL, gateway.ProxyOptions{DialTimeout: time.Second, ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 4, MaxConnsPerHost: 2})
	const requests = 8
	errs := make(chan error, requests)
	for range requests {
		go func() {
			resp, err := http.Get(px.URL + "/a")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					err = fmt.Errorf("%d %q", resp.StatusCode, b)
				}
			}
			errs <- err
		}()
	}
	edgetest.Poll(t, 10*time.Second, "2 requests reaching the upstream", func() bool { return inside.Load() >= 2 })
	for range requests {
		release <- struct{}{}
	}
	for range requests {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("the upstream had %d requests at once, want at most 2", m)
	}
	if n := up.Conns.Load(); n > 2 {
		t.Errorf("%d upstream connections, want at most 2", n)
	}
}

// TestForwardingStreamFreesItsConnectionSlot holds an event stream open
// through a proxy allowed one upstream connection: a stream may last for
// hours, so once its headers have arrived it must not keep the next
// request waiting.
func TestForwardingStreamFreesItsConnectionSlot(t *testing.T) {
	onProxyEdges(t, testForwardingStreamFreesItsConnectionSlot)
}

func testForwardingStreamFreesItsConnectionSlot(t *testing.T, edge string) {
	done := make(chan struct{})
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, "ok")
	})
	defer close(done)
	px := openProxyWith(t, edge, up.URL, gateway.ProxyOptions{DialTimeout: time.Second, ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 4, MaxConnsPerHost: 1})
	stream, err := http.Get(px.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	line, err := bufio.NewReader(stream.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("stream: %q %v", line, err)
	}
	client := &http.Client{Timeout: 10 * time.Second} // the proxy would answer 504 after 30 s
	resp, err := client.Get(px.URL + "/a")
	if err != nil {
		t.Fatalf("a request behind an open stream: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("a request behind an open stream: %d %q", resp.StatusCode, b)
	}
}

func TestForwardingDropsHopByHopHeaders(t *testing.T) {
	onProxyEdges(t, testForwardingDropsHopByHopHeaders)
}

func testForwardingDropsHopByHopHeaders(t *testing.T, edge string) {
	var got http.Header
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Connection", "X-Upstream-Private")
		w.Header().Set("X-Upstream-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		io.WriteString(w, "ok")
	})
	px := openProxy(t, edge, up.URL, 0)
	conn := edgetest.Dial(t, px.URL)
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, X-Private\r\nX-Private: p\r\nTe: trailers\r\nProxy-Authorization: Basic x\r\nX-Kept: k\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{"X-Private", "Proxy-Authorization", "Connection"} {
		if got.Get(h) != "" {
			t.Errorf("upstream received hop-by-hop header %s", h)
		}
	}
	if got.Get("X-Kept") != "k" || got.Get("Te") != "trailers" {
		t.Errorf("end-to-end headers lost: %v", got)
	}
	if resp.Header.Get("X-Upstream-Private") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("client received the upstream's hop-by-hop headers: %v", resp.Header)
	}
}

func TestForwardingRetriesAStaleConnection(t *testing.T) {
	onProxyEdges(t, testForwardingRetriesAStaleConnection)
}

func testForwardingRetriesAStaleConnection(t *testing.T, edge string) {
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	px := openProxy(t, edge, up.URL, 0)
	get := func(method, body string) (int, string) {
		req, _ := http.NewRequest(method, px.URL+"/", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := get("GET", ""); code != 200 || b != "ok" {
		t.Fatal(code, b)
	}
	up.CloseClientConnections() // the pooled connection is now dead
	time.Sleep(20 * time.Millisecond)
	if code, b := get("GET", ""); code != 200 || b != "ok" {
		t.Fatalf("GET on a stale connection was not retried: %d %q", code, b)
	}
	up.CloseClientConnections()
	time.Sleep(20 * time.Millisecond)
	// A POST with a body is never replayed. The other edges learn that a
	// pooled connection closed only when they send on it: the POST goes
	// out on it and is answered 502. The event-loop edge watches its idle
	// connections and closed this one when the upstream did, so the POST
	// goes out on a new connection (that it is never replayed either is
	// TestForwardingRetriesOnceAtMost's).
	want := 502
	if edge == "evloop" {
		want = 200
	}
	if code, _ := get("POST", "body"); code != want {
		t.Fatalf("a POST with a body after its pooled connection closed: %d, want %d", code, want)
	}
}

// An upstream restart closes every pooled connection at once. Each
// request after it must succeed: the first stale connection found drops
// the other idle ones, and its retry dials instead of taking another dead
// one from the pool.
func TestForwardingAfterTheUpstreamClosedEveryConnection(t *testing.T) {
	onProxyEdges(t, testForwardingAfterTheUpstreamClosedEveryConnection)
}

func testForwardingAfterTheUpstreamClosedEveryConnection(t *testing.T, edge string) {
	var inFlight sync.WaitGroup
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			inFlight.Done()
			inFlight.Wait() // all four at once, so the pool ends up with four connections
		}
		io.WriteString(w, "ok")
	})
	px := openProxy(t, edge, up.URL, 0)
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, px.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	inFlight.Add(4)
	var done sync.WaitGroup
	for range 4 {
		done.Go(func() { call("GET", "/hold", "") })
	}
	done.Wait()
	if n := up.Conns.Load(); n != 4 {
		t.Fatalf("%d upstream connections, want 4 pooled", n)
	}

	up.CloseClientConnections() // a restart: every pooled connection is dead
	time.Sleep(20 * time.Millisecond)
	for i := range 4 {
		if code, b := call("GET", "/", ""); code != 200 || b != "ok" {
			t.Fatalf("GET %d after the restart: %d %q", i, code, b)
		}
	}
	if code, b := call("POST", "/", "body"); code != 200 || b != "ok" {
		t.Fatalf("POST after the pool was renewed: %d %q", code, b)
	}
}

func TestForwardingClosesAbandonedBodies(t *testing.T) {
	onProxyEdges(t, testForwardingClosesAbandonedBodies)
}

func testForwardingClosesAbandonedBodies(t *testing.T, edge string) {
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		// An answer longer than the kernel's socket buffers can hold, so the
		// proxy is still copying when the client gives up.
		w.Header().Set("Content-Type", "text/plain")
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := io.WriteString(w, strings.Repeat("x", 16<<10)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Millisecond)
		}
	})
	px := openProxy(t, edge, up.URL, 0)
	for range 3 {
		resp, err := http.Get(px.URL + "/big")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		io.ReadFull(resp.Body, buf)
		resp.Body.Close() // the client gives up half way
	}
	time.Sleep(50 * time.Millisecond)
	if n := up.Conns.Load(); n < 3 {
		t.Fatalf("%d upstream connections: a half-read body must not be reused", n)
	}
}

// A request the upstream may have acted on before its connection broke
// is sent again only when it is safe to (gateway.Replayable): no body, an
// idempotent method. Then once more, on a new connection, and no more;
// else never, so an upstream gets a POST once even when it read the
// request and closed without answering. The same rule on every edge, for
// an upstream that closes a connection before its first answer (fasthttp
// once sent a GET max_idle_conns_per_host + 1 times) and one that closes
// it after one answer (net/http's lean path once sent a body-less POST
// again). Counted in the requests the upstream reads.
func TestForwardingRetriesOnceAtMost(t *testing.T) {
	onProxyEdges(t, testForwardingRetriesOnceAtMost)
}

func testForwardingRetriesOnceAtMost(t *testing.T, edge string) {
	for _, upstream := range []struct {
		name     string
		answered int // requests answered on a connection before it closes unanswered
	}{{"closes every connection unanswered", 0}, {"closes a reused connection unanswered", 1}} {
		t.Run(upstream.name, func(t *testing.T) {
			var mu sync.Mutex
			read := map[string]int{} // "METHOD /path": requests read
			up := edgetest.RawUpstream(t, func(conn net.Conn) {
				br := bufio.NewReader(conn)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					mu.Lock()
					read[req.Method+" "+req.URL.Path]++
					mu.Unlock()
					if i == upstream.answered {
						return // and close
					}
					io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			px := openProxyWith(t, edge, up, gateway.ProxyOptions{DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second,
				IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 8})
			call := func(method, path string) int {
				req, _ := http.NewRequest(method, px.URL+path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			for _, tc := range []struct {
				method  string
				retried bool
			}{{"GET", true}, {"DELETE", true}, {"PUT", true}, {"POST", false}, {"PATCH", false}} {
				if upstream.answered > 0 {
					// A connection that has answered once, idle in the pool.
					if code := call("GET", "/prime"); code != 200 {
						t.Fatalf("GET /prime: %d", code)
					}
				}
				code := call(tc.method, "/"+tc.method)
				mu.Lock()
				n := read[tc.method+" /"+tc.method]
				mu.Unlock()
				// The retry's new connection answers its first request.
				want, wantCode := 1, http.StatusBadGateway
				if tc.retried {
					want = 2
					if upstream.answered > 0 {
						wantCode = 200
					}
				}
				if n != want || code != wantCode {
					t.Errorf("%s: the upstream read it %d times, the client got %d; want %d, %d", tc.method, n, code, want, wantCode)
				}
			}
		})
	}
}

// The proxy closes its idle upstream connections once it has drained,
// on every edge: those of the lean path and those of
// httputil.ReverseProxy (a chunked upload; on fasthttp, one handed to
// net/http). The upstream sees every connection it accepted close.
func TestShutdownClosesIdleUpstreamConnections(t *testing.T) {
	onProxyEdges(t, testShutdownClosesIdleUpstreamConnections)
}

func testShutdownClosesIdleUpstreamConnections(t *testing.T, edge string) {
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	px := openProxy(t, edge, up.URL, 0)
	client := &http.Client{Transport: &http.Transport{}}
	for _, body := range []io.Reader{nil, io.MultiReader(strings.NewReader("chunked "), strings.NewReader("upload"))} {
		req, _ := http.NewRequest("POST", px.URL+"/", body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	client.CloseIdleConnections() // the client's side: nothing to drain
	if n := up.Conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections, want 2: one a path", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := px.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	edgetest.Poll(t, 10*time.Second, "2 idle upstream connections closed after the drain", func() bool { return up.Closed.Load() >= 2 })
}

// An upstream that sends interim heads (103 Early Hints), or a part of
// its final head, and then never the rest of it gets 504 after
// response_header_timeout, on every edge:
// the timeout runs from the request's last write to the final head,
// interim heads or not, as net/http's Transport and the lean path's
// client count it. fasthttp's edge once lifted it at the end of the 103,
// and held the request for as long as the upstream stalled.
func TestForwardingTimesOutAfterAnInterimHead(t *testing.T) {
	onProxyEdges(t, testForwardingTimesOutAfterAnInterimHead)
}

func testForwardingTimesOutAfterAnInterimHead(t *testing.T, edge string) {
	const hints = "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"
	for _, tc := range []struct{ name, interim string }{
		{"103", hints},
		{"two 103s in one write", hints + hints},
		{"bare LF 103", "HTTP/1.1 103 Early Hints\n\r\n"},
		{"half a head", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := edgetest.RawUpstream(t, func(conn net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				io.WriteString(conn, tc.interim)
				io.Copy(io.Discard, conn) // stall until the proxy gives up
			})
			px := openProxy(t, edge, up, 200*time.Millisecond)
			client := &http.Client{Timeout: 10 * time.Second} // the stall lasts 10 s
			resp, err := client.Get(px.URL + "/hinted")
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("%d, want 504", resp.StatusCode)
			}
		})
	}
}
