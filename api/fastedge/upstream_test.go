package fastedge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
	if rec := recs.Last(t, 1); rec.Status != 200 || rec.ResponseBytes != int64(len("data: one\n\ndata: two\n\n")) {
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
		// fasthttp skips the empty lines before a status line; these are
		// the shape of the fuzz input in testdata/fuzz/FuzzHeadDeadline
		// (d6fe24cae035992b) with a 200, which a scan of our own missed.
		{"empty line, bare LF status line, no fields", "\nHTTP/1.1 200 OK\n\r\n", "\n"},
		{"CRLF line, bare LF status line, no fields", "\r\nHTTP/1.1 200 OK\n\r\n", "\n"},
		{"interim head, then an empty line and a bare LF status line", "HTTP/1.1 103 Early Hints\r\n\r\n\nHTTP/1.1 200 OK\n\r\n", "\n"},
		// A field folded onto a second line (obs-fold).
		{"folded field", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream;\r\n charset=utf-8\r\n\r\n", "\n"},
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

// deadlineLog is a connection that logs its reads and read deadlines, in
// order: "read", "deadline" (one set) and "lift" (the zero time). Under
// a headerConn given as head, it logs a read as "head read" while that
// waits for the final head and as "body read" after.
type deadlineLog struct {
	net.Conn
	head *headerConn
	log  []string
}

func (c *deadlineLog) Read(b []byte) (int, error) {
	switch {
	case c.head == nil:
		c.log = append(c.log, "read")
	case c.head.waiting:
		c.log = append(c.log, "head read")
	default:
		c.log = append(c.log, "body read")
	}
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
// read past the head only, once told the head was read (as leanTransport
// tells it): an answer that arrives in one read costs one deadline call,
// a head in two reads keeps it for both, and a body read after its head
// reads without one.
func TestHeaderConnDeadlines(t *testing.T) {
	const head, body = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok"
	for _, tc := range []struct {
		name   string
		chunks []string // the upstream's writes of one answer, each read alone
		head   int      // how many of them the head takes
		want   []string // per exchange
	}{
		{"one read", []string{head + body}, 1, []string{"deadline", "read"}},
		{"body after the head", []string{head, body}, 1, []string{"deadline", "read", "lift", "read"}},
		{"head in two reads", []string{head[:9], head[9:], body}, 2, []string{"deadline", "read", "read", "lift", "read"}},
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
				for i, chunk := range tc.chunks {
					io.WriteString(up, chunk)
					b := make([]byte, len(chunk))
					if _, err := io.ReadFull(c, b); err != nil || string(b) != chunk {
						t.Fatalf("read %q %v, want %q", b, err, chunk)
					}
					if i == tc.head-1 {
						c.headRead()
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
	if rec := recs.Last(t, 1); rec.Status != 200 || rec.ResponseBytes != 4 {
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
