package fastedge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// The upstream client reads a small answer of known length whole, and its
// connection is back in the pool when the call returns; a larger, chunked
// or event-stream answer streams, and holds its connection until its body
// is closed, after which the connection is reused (read to the end) and
// the trailers are there. Over loopback, against net/http's server.
func TestLeanTransportReadsSmallAnswersWhole(t *testing.T) {
	large := strings.Repeat("x", maxWholeAnswer+1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "small")
		case "/large":
			w.Header().Set("Content-Length", "16385")
			io.WriteString(w, large)
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Length", "9")
			io.WriteString(w, "data: 1\n\n")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "chunk")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
		}
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	c := newUpstream(gateway.ProxyOptions{Upstream: u})
	defer c.closeIdle()
	for _, tc := range []struct {
		path, body string
		whole      bool
	}{
		{"/small", "small", true},
		{"/large", large, false},
		{"/events", "data: 1\n\n", false},
		{"/chunked", "chunk", false},
		{"/small", "small", true},
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(up.URL + tc.path)
		if err := c.do(req, resp); err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		stream := resp.BodyStream()
		if whole := stream == nil; whole != tc.whole {
			t.Fatalf("%s: read whole %v, want %v", tc.path, whole, tc.whole)
		}
		if tc.whole {
			if string(resp.Body()) != tc.body || c.hc.IdleConnsCount() != 1 {
				t.Fatalf("%s: body %q, %d idle connections; want %q and 1", tc.path, resp.Body(), c.hc.IdleConnsCount(), tc.body)
			}
		} else {
			if n := c.hc.IdleConnsCount(); n != 0 {
				t.Fatalf("%s: %d idle connections while the body streams, want 0", tc.path, n)
			}
			got, err := io.ReadAll(stream)
			if err != nil || string(got) != tc.body {
				t.Fatalf("%s: streamed %d bytes, %v; want %d", tc.path, len(got), err, len(tc.body))
			}
			if tc.path == "/chunked" {
				if v := stream.(interface{ Trailer(string) []byte }).Trailer("X-Sum"); string(v) != "42" {
					t.Fatalf("trailer X-Sum %q, want 42", v)
				}
			}
			resp.CloseBodyStream()
			if n := c.hc.IdleConnsCount(); n != 1 {
				t.Fatalf("%s: %d idle connections after the body, want 1", tc.path, n)
			}
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	if n := c.hc.ConnsCount(); n != 1 {
		t.Fatalf("%d connections for requests in a row, want 1", n)
	}
}

// A streamed body closed before its end closes its connection: the next
// request dials.
func TestLeanTransportClosesAnUnfinishedStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 2*maxWholeAnswer))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	c := newUpstream(gateway.ProxyOptions{Upstream: u})
	defer c.closeIdle()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(up.URL + "/")
	if err := c.do(req, resp); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.BodyStream(), make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	resp.CloseBodyStream()
	if n, idle := c.hc.ConnsCount(), c.hc.IdleConnsCount(); n != 0 || idle != 0 {
		t.Fatalf("%d connections, %d idle after an unfinished body; want none", n, idle)
	}
}

// BenchmarkUpstreamSmallAnswer is the upstream client's exchange of one
// small answer (the peer benchmark's 99 bytes) over loopback, read whole:
// "fasthttp" is fasthttp's own transport with a streamed body read to its
// end and closed (the lean path before leanTransport), "lean" is
// leanTransport. The upstream runs in the same process, so ns/op holds
// its work too; compare the two in one run.
func BenchmarkUpstreamSmallAnswer(b *testing.B) {
	body := []byte(`{"id":"frm_0001","kind":"form","title":"Guest RSVP","fields":12,"status":"published","v":1,"ok":1}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	u, _ := url.Parse("http://" + ln.Addr().String())
	for _, tc := range []struct {
		name string
		lean bool
	}{{"fasthttp", false}, {"lean", true}} {
		b.Run(tc.name, func(b *testing.B) {
			c := newUpstream(gateway.ProxyOptions{Upstream: u})
			defer c.closeIdle()
			if !tc.lean {
				c.hc.Transport, c.hc.StreamResponseBody = nil, true
			}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			buf := make([]byte, len(body))
			b.ReportAllocs()
			for b.Loop() {
				req.SetRequestURI("/")
				req.UseHostHeader = true
				req.Header.SetHost(u.Host)
				if err := c.do(req, resp); err != nil {
					b.Fatal(err)
				}
				if s := resp.BodyStream(); s != nil {
					if _, err := io.ReadFull(s, buf); err != nil {
						b.Fatal(err)
					}
					resp.CloseBodyStream()
				} else if len(resp.Body()) != len(body) {
					b.Fatalf("body %q", resp.Body())
				}
			}
		})
	}
}

// Small answers read whole travel in buffers the proxy keeps from one
// request to the next (newBodyPool, upstreamBody.whole): under
// concurrent requests every client still gets its own answer's body,
// never another request's.
func TestProxySmallAnswersKeepTheirBodies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat(r.URL.Path, 20))
	}))
	defer up.Close()
	addr, _ := startProxy(t, up.URL, gateway.ProxyOptions{}, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				path := fmt.Sprintf("/g%d-r%03d", g, i)
				resp, err := client.Get("http://" + addr + path)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := strings.Repeat(path, 20); err != nil || string(body) != want {
					errs <- fmt.Errorf("%s: got %.40q…, %v", path, body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The names of the trailers the upstream announces reach the client in
// canonical form, in the Trailer header and in the trailer section, as
// fasthttp's normalising wrote them before the answer's headers stopped
// being normalised (copyHeaders). Read off a raw socket, as sent.
func TestProxyTrailerNamesStayCanonical(t *testing.T) {
	upstream := edgetest.RawUpstream(t, edgetest.AnswerEach("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n5\r\nchunk\r\n0\r\nx-sum: 42\r\n\r\n"))
	addr, _ := startProxy(t, upstream, gateway.ProxyOptions{}, nil)
	conn := edgetest.SendGet(t, addr, "/trailer")
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("\r\n0\r\n")) || !bytes.HasSuffix(got, []byte("\r\n\r\n")) {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	head, rest, _ := bytes.Cut(got, []byte("\r\n\r\n"))
	if !bytes.Contains(append(head, "\r\n"...), []byte("\r\nTrailer: X-Sum\r\n")) || !bytes.Contains(rest, []byte("\r\n0\r\nX-Sum: 42\r\n")) {
		t.Fatalf("answer %q; want the Trailer header and the trailer named X-Sum", got)
	}
}

// writeRequest writes what fasthttp's Request.Write writes, byte for
// byte, for the requests it encodes itself and those it leaves to
// Request.Write, and leaves the same head behind (Host, target,
// Content-Length), with req.URI() parsed as HostClient parses it.
func TestWriteRequestAsRequestWrite(t *testing.T) {
	// to makes r a request of method for target on app.test.
	to := func(r *fasthttp.Request, method, target string) {
		r.Header.SetMethod(method)
		r.SetRequestURI(target)
		r.Header.SetHost("app.test")
	}
	for _, tc := range []struct {
		name string
		make func(req *fasthttp.Request)
	}{
		{"GET", func(r *fasthttp.Request) {
			to(r, "GET", "/a/b?c=d")
			r.Header.Add("X-One", "1")
		}},
		{"GET, empty query", func(r *fasthttp.Request) { to(r, "GET", "/a?") }},
		{"GET, odd path", func(r *fasthttp.Request) { to(r, "GET", "/a/../b//c%2F?x#frag") }},
		{"HEAD", func(r *fasthttp.Request) {
			to(r, "HEAD", "/")
		}},
		{"POST, body", func(r *fasthttp.Request) {
			to(r, "POST", "/p")
			r.SetBodyRaw([]byte(`{"a":1}`))
		}},
		{"POST, body, type", func(r *fasthttp.Request) {
			to(r, "POST", "/p")
			r.Header.SetContentType("application/json")
			r.SetBody([]byte(`{"a":1}`))
		}},
		{"POST, empty", func(r *fasthttp.Request) {
			to(r, "POST", "/p")
		}},
		{"GET, a length and no body", func(r *fasthttp.Request) {
			to(r, "GET", "/t")
			r.Header.SetContentLength(5)
		}},
		{"GET, close", func(r *fasthttp.Request) { to(r, "GET", "/c"); r.SetConnectionClose() }},
		{"absolute, no Host", func(r *fasthttp.Request) { r.SetRequestURI("http://up.test:8080/x?y") }},
		{"Host over the target's", func(r *fasthttp.Request) {
			to(r, "GET", "http://up.test/x")
			r.UseHostHeader = true
		}},
		{"target's host over Host", func(r *fasthttp.Request) { to(r, "GET", "http://up.test/x") }},
		{"userinfo", func(r *fasthttp.Request) { r.SetRequestURI("http://u:p@up.test/x") }},
		{"no host at all", func(r *fasthttp.Request) { r.SetRequestURI("/x") }},
		{"trailers", func(r *fasthttp.Request) {
			to(r, "POST", "/p")
			r.Header.SetTrailer("X-Sum")
			r.SetBodyRaw([]byte("abc"))
		}},
		{"body stream", func(r *fasthttp.Request) {
			to(r, "PUT", "/p")
			r.SetBodyStream(strings.NewReader("streamed"), -1)
		}},
		{"CONNECT", func(r *fasthttp.Request) {
			r.Header.SetMethod("CONNECT")
			r.SetRequestURI("up.test:443")
			r.Header.SetHost("up.test:443")
		}},
		{"raw special headers", func(r *fasthttp.Request) {
			r.Header.DisableSpecialHeader()
			r.SetRequestURI("/r")
			r.Header.Add("Host", "app.test")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			encode := func(write func(*bufio.Writer, *fasthttp.Request) error) (string, string, error) {
				req := fasthttp.AcquireRequest()
				defer fasthttp.ReleaseRequest(req)
				tc.make(req)
				req.URI().DisablePathNormalizing = true // as HostClient does before RoundTrip
				var out bytes.Buffer
				bw := bufio.NewWriterSize(&out, upstreamBufferSize)
				err := write(bw, req)
				bw.Flush()
				return out.String(), req.Header.String(), err
			}
			want, wantHead, wantErr := encode(func(bw *bufio.Writer, r *fasthttp.Request) error { return r.Write(bw) })
			got, gotHead, err := encode(writeRequest)
			if got != want || gotHead != wantHead || fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("wrote %q (%v), head left %q;\nRequest.Write wrote %q (%v), head left %q", got, err, gotHead, want, wantErr, wantHead)
			}
		})
	}
}
