package fastedge

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// headShapes are answers whose head fasthttp reads in ways a byte scan
// of the head's end would have to copy: bare LF line ends, empty lines
// before a status line, an empty header block, interim heads, a folded
// field, and heads that are no heads. Each is followed by some body.
var headShapes = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\n\r\ndata: one\n\n",
	"\nHTTP/1.1 200 OK\n\r\ndata: one\n\n",
	"\r\nHTTP/1.1 200 OK\n\r\ndata: one\n\n",
	"\nHTTP/0.0 000\n\r\n",
	"HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\ndata: one\n\n",
	"HTTP/1.1 200 OK\nX: y\n\nab\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: y\n\r\nab\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\nX: a\n b\n\r\nok",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 103 Early Hints\r\n\r\n\nHTTP/1.1 200 OK\n\r\ndata: one\n\n",
	"HTTP/1.1 100 Continue\n\r\nHTTP/1.1 204 No Content\n\r\n",
	"HTTP/1.1 103 Early Hints\r\n\r\n",
	"HTTP/1.1  199 Odd\r\n\r\nHTTP/1.1 200 OK\r\n\r\nab",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nframes",
	"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
	"\r\n\r\n0",
	"HTTP/1.1 200 OK\r\n",
}

// The response-header deadline is on for every read of an answer's heads
// and off for every read of its body, for each shape of headShapes split
// across two reads at every byte.
func TestHeadDeadlineEverySplit(t *testing.T) {
	for _, answer := range headShapes {
		for at := 0; at <= len(answer); at++ {
			checkHeadDeadline(t, []byte(answer), at)
		}
	}
}

// FuzzHeadDeadline: whatever an upstream answers, split across two reads
// anywhere, headerConn stops waiting for the head exactly when fasthttp
// reads a final head from the same reads, and the deadline is on for
// every read of the heads and off for every read after the final one.
// Seeds: testdata/fuzz/FuzzHeadDeadline (d6fe24cae035992b, an empty line
// and a bare-LF status line, is the answer the byte scan headerConn had
// before missed) and headShapes.
func FuzzHeadDeadline(f *testing.F) {
	for _, answer := range headShapes {
		f.Add([]byte(answer), uint(len(answer)/2))
	}
	f.Fuzz(func(t *testing.T, b []byte, split uint) {
		checkHeadDeadline(t, b, int(split%uint(len(b)+1)))
	})
}

// checkHeadDeadline has leanTransport send a request over a headerConn
// and read the answer b, which the upstream writes as b[:at] and b[at:]
// before it closes. The upstream is the other end of a net.Pipe, whose
// reads return what one write holds and no more, so the answer comes in
// exactly those two reads, as over TCP it may or may not.
func checkHeadDeadline(t *testing.T, b []byte, at int) {
	t.Helper()
	client, upstream := net.Pipe()
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		defer upstream.Close()
		if _, err := http.ReadRequest(bufio.NewReader(upstream)); err != nil {
			return
		}
		for _, part := range [][]byte{b[:at], b[at:]} {
			if _, err := upstream.Write(part); err != nil {
				return // the transport closed the connection
			}
		}
	}()
	logged := &deadlineLog{Conn: client}
	c := &headerConn{Conn: logged, timeout: time.Hour}
	logged.head = c
	hc := &fasthttp.HostClient{Addr: "upstream", Dial: func(string) (net.Conn, error) { return c, nil },
		ReadBufferSize: upstreamBufferSize, WriteBufferSize: upstreamBufferSize}
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("http://upstream/")
	req.SetConnectionClose() // so RoundTrip closes it, and the pipe, when done
	_, err := newLeanTransport().RoundTrip(hc, &req, &resp)
	if err == nil && resp.IsBodyStream() {
		_, _ = io.Copy(io.Discard, resp.BodyStream())
		_ = resp.CloseBodyStream()
	}
	<-answered

	var twoReads fasthttp.Response
	twoReads.SkipBody = true
	wantHead := twoReads.ReadLimitBody(bufio.NewReaderSize(&partsReader{parts: [][]byte{b[:at], b[at:]}}, upstreamBufferSize), 0) == nil
	if gotHead := !c.waiting; gotHead != wantHead || (err == nil) != wantHead {
		t.Fatalf("%q split at %d: fasthttp read a final head %v; headerConn done waiting %v (RoundTrip: %v)", b, at, wantHead, gotHead, err)
	}
	armed := false
	for i, call := range logged.log {
		switch call {
		case "deadline":
			armed = true
		case "lift":
			armed = false
		case "head read":
			if !armed {
				t.Fatalf("%q split at %d: a read of the head without the deadline: %v", b, at, logged.log[:i+1])
			}
		case "body read":
			if armed {
				t.Fatalf("%q split at %d: a read of the body under the deadline: %v", b, at, logged.log[:i+1])
			}
		}
	}
}

// partsReader reads its parts one a read, as the pipe of
// checkHeadDeadline delivers its upstream's writes, then io.EOF.
type partsReader struct{ parts [][]byte }

func (r *partsReader) Read(p []byte) (int, error) {
	for len(r.parts) > 0 && len(r.parts[0]) == 0 {
		r.parts = r.parts[1:]
	}
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	return n, nil
}

// answerConn is a connection that answers each read with the whole of
// answer and takes every write, with no system call: BenchmarkHeaderConn
// measures headerConn's own work, not the socket's.
type answerConn struct {
	net.Conn // nil: only Read, Write and SetReadDeadline are called
	answer   []byte
}

func (c *answerConn) Read(b []byte) (int, error)      { return copy(b, c.answer), nil }
func (c *answerConn) Write(b []byte) (int, error)     { return len(b), nil }
func (c *answerConn) SetReadDeadline(time.Time) error { return nil }

// BenchmarkHeaderConn: headerConn's work for one request of the
// benchmark upstream: the request written, the whole answer (head and
// body) arriving in one read, as on the proxy's common path, and the
// head's end noted.
//
//	go test -run '^$' -bench HeaderConn ./api/fastedge/
func BenchmarkHeaderConn(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nContent-Type: application/json\r\n" +
		"Date: Mon, 07 Dec 2026 17:00:00 GMT\r\n\r\n" + strings.Repeat("x", 98) + "\n")
	request := []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1:21401\r\n\r\n")
	c := &headerConn{Conn: &answerConn{answer: answer}, timeout: time.Minute}
	buf := make([]byte, upstreamBufferSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(request); err != nil {
			b.Fatal(err)
		}
		if n, err := c.Read(buf); err != nil || !bytes.Equal(buf[:n], answer) {
			b.Fatal(n, err)
		}
		c.headRead()
	}
}
