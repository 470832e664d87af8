package fastedge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// An event stream reaches the client event by event: the upstream sends
// the second event only once the client has read the first. The answer
// is read off a raw socket, as sent.
func TestProxyStreamsEventByEvent(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, ev := range []string{"data: one\n\n", "data: two\n\n"} {
			if i > 0 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
			io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}))
	defer up.Close()
	addr, recs := startProxy(t, up.URL, gateway.ProxyOptions{ResponseHeaderTimeout: time.Second}, nil)
	resp := edgetest.Get(t, addr, "/events")
	if resp.StatusCode != 200 || resp.TransferEncoding == nil {
		t.Fatalf("%d, transfer encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	events := bufio.NewReader(resp.Body)
	for i, want := range []string{"data: one\n", "\n", "data: two\n", "\n"} {
		if i == 2 {
			close(next) // the first event arrived before the second was sent
		}
		line, err := events.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("line %d: %q %v, want %q", i, line, err, want)
		}
	}
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 0 {
		t.Fatalf("after the events: %q %v", b, err)
	}
	if rec := recs.last(t, 1); rec.Status != 200 || rec.ResponseBytes != int64(len("data: one\n\ndata: two\n\n")) {
		t.Fatalf("recorded %d, %d bytes", rec.Status, rec.ResponseBytes)
	}
}

// The upstream's hop-by-hop headers, and those its Connection header
// names, stop at the proxy; its other headers, its own X-Request-Id and
// the proxy's rate-limit headers reach the client. Read off a raw socket.
func TestProxyAnswerHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Upstream-Private")
		h.Set("X-Upstream-Private", "secret")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-App", "a")
		h.Set("X-Request-Id", "from-the-app")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	addr, _ := startProxy(t, up.URL, gateway.ProxyOptions{}, nil)
	resp := edgetest.Get(t, addr, "/x")
	resp.Body.Close()
	for _, name := range []string{"X-Upstream-Private", "Keep-Alive", "Proxy-Authenticate"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("the client got the upstream's %s: %q", name, v)
		}
	}
	if resp.Close {
		t.Error("the upstream's Connection header closed the client's connection")
	}
	if resp.Header.Get("X-App") != "a" || resp.Header.Values("X-Request-Id")[0] != "from-the-app" || len(resp.Header.Values("X-Request-Id")) != 1 {
		t.Errorf("headers %v", resp.Header)
	}
}

// A streamed answer outlasts response_header_timeout however its head
// ends, as long as fasthttp reads it as a head: the deadline is lifted
// with the head, not kept on the body. The upstream, raw, sends a line,
// waits until the client has it and twice the timeout has passed, then
// sends another and closes. (A head whose lines all end in bare LFs, with
// no "\r\n\r\n" in the body either, is no case: fasthttp waits for one,
// and the client gets 504.)
func TestProxyStreamOutlastsTheHeaderTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct{ name, head, eol string }{
		{"CRLF", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", "\n"},
		// fasthttp takes this head at the CRLF: no field, a bare LF
		// before it. The body is read to the close.
		{"bare LF status line, no fields", "HTTP/1.1 200 OK\n\r\n", "\n"},
		// fasthttp takes this head once the body brings a "\r\n\r\n".
		{"bare LF head, CRLF body", "HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\n", "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := "data: one" + tc.eol + tc.eol
			gotFirst := make(chan struct{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, tc.head+first)
				select {
				case <-gotFirst:
				case <-time.After(10 * time.Second):
					return
				}
				<-time.After(2 * timeout) // the stream outlasts the timeout
				io.WriteString(c, "data: two"+tc.eol+tc.eol)
			}()
			addr, _ := startProxy(t, "http://"+ln.Addr().String(), gateway.ProxyOptions{ResponseHeaderTimeout: timeout}, nil)
			resp := edgetest.Get(t, addr, "/events")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			events := bufio.NewReader(resp.Body)
			b := make([]byte, len(first))
			if _, err := io.ReadFull(events, b); err != nil || string(b) != first {
				t.Fatalf("first event %q %v", b, err)
			}
			close(gotFirst)
			if rest, err := io.ReadAll(events); err != nil || string(rest) != "data: two"+tc.eol+tc.eol {
				t.Fatalf("after the first event: %q %v; the stream was cut", rest, err)
			}
		})
	}
}

// headEnd finds the blank line that ends a head wherever the reads
// split it: a "\r\n\r\n", or the CRLF right after a first line that ends
// with a bare LF (fasthttp's empty header block). Other bare-LF endings
// are no end: fasthttp waits for a "\r\n\r\n" there.
func TestHeadEnds(t *testing.T) {
	for _, head := range []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 200 OK\n\r\nok",
		"HTTP/1.1 200 OK\nX: y\n\nok\r\n\r\n"} {
		for split := 0; split <= len(head); split++ {
			c := &headerConn{}
			got := c.headEnd([]byte(head[:split])) >= 0 || c.headEnd([]byte(head[split:])) >= 0
			if !got {
				t.Errorf("%q split at %d: no end of head found", head, split)
			}
		}
	}
	for _, notEnd := range []string{"HTTP/1.1 200 OK\r\n", "a\r\n\rb\r\n", "\n\n", "\r\r\n\n",
		"HTTP/1.1 200 OK\nX: y\n\n", "HTTP/1.1 200 OK\r\nX: y\n\r\n", "HTTP/1.1 200 OK\nX: y\n\r\n"} {
		if (&headerConn{}).headEnd([]byte(notEnd)) >= 0 {
			t.Errorf("%q read as the end of a head", notEnd)
		}
	}
}

// FuzzHeadEnds: headEnd, fed a byte string in two reads split anywhere,
// finds the end of a head exactly when the string holds "\r\n\r\n" or
// its first LF is a bare one followed by CRLF. Seeds:
// testdata/fuzz/FuzzHeadEnds.
func FuzzHeadEnds(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, split uint) {
		at := int(split % uint(len(b)+1))
		c := &headerConn{}
		got := c.headEnd(b[:at]) >= 0 || c.headEnd(b[at:]) >= 0
		lf := bytes.IndexByte(b, '\n')
		emptyBlock := lf >= 0 && (lf == 0 || b[lf-1] != '\r') && bytes.HasPrefix(b[lf+1:], []byte("\r\n"))
		if want := bytes.Contains(b, []byte("\r\n\r\n")) || emptyBlock; got != want {
			t.Fatalf("%q split at %d: %v, want %v", b, at, got, want)
		}
	})
}

// FuzzHeadEndsWhereFasthttpDoes: when fasthttp's ResponseHeader.Read
// takes a head from b, headEnd finds an end of head in b, so the
// deadline never stays on a body fasthttp is reading.
func FuzzHeadEndsWhereFasthttpDoes(f *testing.F) {
	for _, seed := range []string{"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\n\r\nbody", "HTTP/1.1 200 OK\nX: y\n\nab\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nX: y\n\r\n", "HTTP/1.1 200 OK\nX: y\r\n\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h fasthttp.ResponseHeader
		if h.Read(bufio.NewReaderSize(bytes.NewReader(b), len(b)+16)) != nil {
			return
		}
		if (&headerConn{}).headEnd(b) < 0 {
			t.Fatalf("fasthttp read a head from %q; headEnd found no end", b)
		}
	})
}

// deadlineLog is a connection that logs its reads and read deadlines, in
// order: "read", "deadline" (one set) and "lift" (the zero time).
type deadlineLog struct {
	net.Conn
	log []string
}

func (c *deadlineLog) Read(b []byte) (int, error) {
	c.log = append(c.log, "read")
	return c.Conn.Read(b)
}

func (c *deadlineLog) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		c.log = append(c.log, "lift")
	} else {
		c.log = append(c.log, "deadline")
	}
	return c.Conn.SetReadDeadline(t)
}

// headerConn sets a read deadline at each write and lifts it before a
// read past the head only: an answer that arrives in one read costs one
// deadline call, and a body read after its head reads without one.
func TestHeaderConnDeadlines(t *testing.T) {
	const head, body = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok"
	for _, tc := range []struct {
		name   string
		chunks []string // the upstream's writes of one answer, each read alone
		want   []string // per exchange
	}{
		{"one read", []string{head + body}, []string{"deadline", "read"}},
		{"body after the head", []string{head, body}, []string{"deadline", "read", "lift", "read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			dialed, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer dialed.Close()
			up, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			logged := &deadlineLog{Conn: dialed}
			c := &headerConn{Conn: logged, timeout: time.Minute}
			var want []string
			for range 2 { // two exchanges on the connection
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				want = append(want, tc.want...)
				for _, chunk := range tc.chunks {
					io.WriteString(up, chunk)
					b := make([]byte, len(chunk))
					if _, err := io.ReadFull(c, b); err != nil || string(b) != chunk {
						t.Fatalf("read %q %v, want %q", b, err, chunk)
					}
				}
			}
			if got := strings.Join(logged.log, " "); got != strings.Join(want, " ") {
				t.Fatalf("calls %s\nwant  %s", got, strings.Join(want, " "))
			}
		})
	}
}

// An answer of known length the upstream cuts off mid-body is not passed
// on as if complete: the client's connection closes (fasthttp sends
// nothing of a streamed answer whose body fails before its first flush),
// and the record counts the bytes that came. A small answer is read whole
// before it is sent (maxWholeAnswer); on failure it takes the streamed
// answer's path with what it read.
func TestProxySmallAnswerCutOffMidBody(t *testing.T) {
	upstream := edgetest.RawUpstream(t, edgetest.AnswerEach("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd"))
	addr, recs := startProxy(t, upstream, gateway.ProxyOptions{}, nil)
	got, err := io.ReadAll(edgetest.SendGet(t, addr, "/cut")) // to the close
	if err != nil || strings.Contains(string(got), "abcd") {
		t.Fatalf("the client got %q, %v; want the connection closed before a complete answer", got, err)
	}
	if rec := recs.last(t, 1); rec.Status != 200 || rec.ResponseBytes != 4 {
		t.Fatalf("recorded %d, %d bytes; want 200, 4", rec.Status, rec.ResponseBytes)
	}
}

// A small answer whose body comes after its head, in a read of its own,
// is read whole and its upstream connection reused: the stream's end is
// read too (fasthttp closes a connection whose streamed body was not
// read to its end).
func TestProxySmallAnswerReusesItsConnection(t *testing.T) {
	up := edgetest.NewCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "4")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		io.WriteString(w, "late")
	})
	addr, _ := startProxy(t, up.URL, gateway.ProxyOptions{}, nil)
	for i := range 3 {
		resp := edgetest.Get(t, addr, "/late")
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "late" || err != nil {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, b, err)
		}
	}
	if conns := up.Conns.Load(); conns != 1 {
		t.Fatalf("%d upstream connections for 3 requests in a row, want 1", conns)
	}
}

// scan waits past interim heads (1xx but 101) and the empty lines
// fasthttp skips before a head, and stops at the end of the final head,
// wherever the reads split the answer: the response-header deadline
// stays until the final head has come.
func TestHeaderConnScan(t *testing.T) {
	const hints, final = "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	for _, tc := range []struct {
		answer string
		final  bool
	}{
		{hints, false},
		{hints + final, true},
		{hints + hints, false},
		{"HTTP/1.1 100 Continue\r\n\r\n" + hints, false},
		{"HTTP/1.1 100 Continue\r\n\r\n" + hints + final, true},
		{"HTTP/1.1 103 Early Hints\n\r\n", false}, // fasthttp's empty header block
		{"HTTP/1.1 103 Early Hints\n\r\nHTTP/1.1 204 No Content\n\r\n", true},
		{"HTTP/1.1  199 Odd\r\n\r\n", false},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\n\r\n", true},
		{"\r\n\r\n", false},
		{"\r\n\r\n" + hints, false},
		{"\r\n\r\nH", false}, // the next head's bytes are not this one's
		{"\r\n\r\n" + final, true},
	} {
		for split := 0; split <= len(tc.answer); split++ {
			c := &headerConn{waiting: true}
			for _, read := range []string{tc.answer[:split], tc.answer[split:]} {
				if c.waiting {
					c.scan([]byte(read))
				}
			}
			if c.waiting == tc.final {
				t.Errorf("%q split at %d: still waiting %v", tc.answer, split, c.waiting)
			}
		}
	}
}

// errMore ends the bytes a fuzz target gives fasthttp: where it returns
// it (or io.EOF, which it returns when it has read nothing of a head), it
// wanted more to complete the final head.
var errMore = errors.New("more to come")

// FuzzScanWhereFasthttpDoes: scan, fed an answer in two reads split
// anywhere, stops waiting where fasthttp's Response.Read has the final
// head: when fasthttp reads one from b, scan has stopped, so the deadline
// never stays on a body; when fasthttp wants more bytes, scan still
// waits, so a final head that never comes times out.
func FuzzScanWhereFasthttpDoes(f *testing.F) {
	for _, seed := range []string{"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 100 Continue\n\r\nHTTP/1.1 204 No Content\n\r\n",
		"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "HTTP/1.1 200 OK\nX: y\n\nab\r\n\r\n"} {
		f.Add([]byte(seed), uint(len(seed)/2))
	}
	f.Fuzz(func(t *testing.T, b []byte, split uint) {
		at := int(split % uint(len(b)+1))
		c := &headerConn{waiting: true}
		for _, read := range [][]byte{b[:at], b[at:]} {
			if c.waiting {
				c.scan(read)
			}
		}
		var resp fasthttp.Response
		resp.StreamBody = true
		err := resp.Read(bufio.NewReaderSize(io.MultiReader(bytes.NewReader(b), iotest.ErrReader(errMore)), len(b)+16))
		switch {
		case err == nil && c.waiting:
			t.Fatalf("fasthttp read the final head (%d) from %q; scan still waits (split at %d)", resp.StatusCode(), b, at)
		case (errors.Is(err, errMore) || err == io.EOF) && !c.waiting:
			t.Fatalf("fasthttp wants more than %q; scan stopped waiting (split at %d)", b, at)
		}
	})
}
