package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// Every shape of upstream answer a proxy edge relays is relayed alike on
// each: trailers announced in a chunked answer reach the client, the
// unannounced ones do not; an answer framed by the upstream's close
// (HTTP/1.1 or HTTP/1.0, no length, not chunked) goes to the HTTP/1.1
// client chunked, on a connection that stays open; each is recorded
// once with its status and body bytes. The event-loop edge once dropped
// the trailers and answered 502 to a close-framed answer.
func TestProxyRelaysEveryAnswerFraming(t *testing.T) {
	onProxyEdges(t, testProxyRelaysEveryAnswerFraming)
}

func testProxyRelaysEveryAnswerFraming(t *testing.T, edge string) {
	big := strings.Repeat("0123456789abcdef", 20<<10) // over the loop's 1 MiB relay buffer is not needed: 320 KiB spans many reads
	for _, tc := range []struct {
		name, answer, body string
		trailer            http.Header
		chunked            bool
	}{
		{name: "chunked with trailers",
			answer: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\nX-Sum: 42\r\nX-Unannounced: u\r\n\r\n",
			body:   "body", trailer: http.Header{"X-Sum": {"42"}}, chunked: true},
		{name: "chunked, a trailer announced and not sent",
			answer: "HTTP/1.1 200 OK\r\nTrailer: x-sum, X-Late\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\nX-Sum: 42\r\n\r\n",
			body:   "body", trailer: http.Header{"X-Sum": {"42"}, "X-Late": nil}, chunked: true},
		{name: "Content-Length and chunked: chunked wins",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", body: "ok", chunked: true},
		{name: "framed by close, HTTP/1.1", answer: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", body: "until close", chunked: true},
		{name: "framed by close, HTTP/1.0", answer: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nold body", body: "old body", chunked: true},
		{name: "framed by close, large", answer: "HTTP/1.1 200 OK\r\n\r\n" + big, body: big, chunked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := edgetest.RawUpstream(t, edgetest.AnswerEach(tc.answer))
			recs := &edgetest.Records{}
			px := recordedProxy(t, edge, up, recs)
			conn := edgetest.Dial(t, px.Addr)
			br := bufio.NewReader(conn)
			for i := range 2 { // the second on the same connection: it stayed open
				req, _ := http.NewRequest("GET", "http://app.example/x", nil)
				req.Header.Set("TE", "trailers")
				resp, body, err := rawRoundTrip(t, conn, br, req)
				if err != nil || resp.StatusCode != 200 || string(body) != tc.body || resp.Close {
					t.Fatalf("request %d: %d %v close %v, body %.40q (%d bytes)", i, resp.StatusCode, err, resp.Close, body, len(body))
				}
				if chunked := len(resp.TransferEncoding) == 1; chunked != tc.chunked {
					t.Errorf("request %d: Transfer-Encoding %q", i, resp.TransferEncoding)
				}
				if !sameHeader(resp.Trailer, tc.trailer) {
					t.Errorf("request %d: trailers %q, want %q", i, resp.Trailer, tc.trailer)
				}
			}
			edgetest.Poll(t, 10*time.Second, "2 records", func() bool { return len(recs.All()) >= 2 })
			for _, r := range recs.All() {
				if r.Status != 200 || r.ResponseBytes != int64(len(tc.body)) {
					t.Errorf("record: status %d, %d bytes, want 200, %d", r.Status, r.ResponseBytes, len(tc.body))
				}
			}
			if n := len(recs.All()); n != 2 {
				t.Errorf("%d records for 2 requests", n)
			}
		})
	}
}

// An upstream answer the gateway must refuse is answered 502 on every
// edge, with the same message: the event-loop edge once answered an
// unasked-for 101 with the message of an unreachable upstream.
func TestProxyRefusesBadAnswersAlike(t *testing.T) {
	onProxyEdges(t, testProxyRefusesBadAnswersAlike)
}

func testProxyRefusesBadAnswersAlike(t *testing.T, edge string) {
	for _, tc := range []struct{ name, answer, message string }{
		{"unasked 101", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", "protocol switch nobody asked for"},
		{"malformed status", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", "cannot be reached"},
		{"no status line", "garbage\r\n\r\n", "cannot be reached"},
		{"Content-Length not digits", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "cannot be reached"},
		{"Content-Lengths that differ", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "cannot be reached"},
		{"another transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", "cannot be reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := edgetest.RawUpstream(t, edgetest.AnswerEach(tc.answer))
			recs := &edgetest.Records{}
			px := recordedProxy(t, edge, up, recs)
			conn := edgetest.Dial(t, px.Addr)
			req, _ := http.NewRequest("GET", "http://app.example/x", nil)
			resp, body, err := rawRoundTrip(t, conn, bufio.NewReader(conn), req)
			if err != nil || resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), tc.message) {
				t.Fatalf("%d %v %s, want 502 saying %q", resp.StatusCode, err, body, tc.message)
			}
			if r := recs.Last(t, 1); r.Status != http.StatusBadGateway {
				t.Errorf("record status %d", r.Status)
			}
		})
	}
}

// An answer the upstream cuts short (its connection closed before the
// body's end) reaches the client cut short, its connection closed, and
// the request went upstream once: the event-loop edge once sent a GET
// again when the connection closed mid-body, and relayed the second
// answer's head as the first one's body.
func TestProxyCutAnswerIsNotReplayed(t *testing.T) {
	onProxyEdges(t, testProxyCutAnswerIsNotReplayed)
}

func testProxyCutAnswerIsNotReplayed(t *testing.T, edge string) {
	for _, tc := range []struct{ name, answer string }{
		{"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var read atomic.Int64
			up := edgetest.RawUpstream(t, func(conn net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				read.Add(1)
				io.WriteString(conn, tc.answer)
			})
			px := recordedProxy(t, edge, up, &edgetest.Records{})
			conn := edgetest.Dial(t, px.Addr)
			io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: app.example\r\n\r\n")
			got, _ := io.ReadAll(conn) // to the close
			if resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(got))), nil); err == nil {
				if body, err := io.ReadAll(resp.Body); err == nil {
					t.Errorf("a whole answer relayed: %d %q", resp.StatusCode, body)
				}
			}
			if n := read.Load(); n != 1 {
				t.Errorf("the upstream read the request %d times, want 1", n)
			}
		})
	}
}

// rawRoundTrip sends req on conn and reads its answer and body from br.
func rawRoundTrip(t *testing.T, conn net.Conn, br *bufio.Reader, req *http.Request) (*http.Response, []byte, error) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(edgetest.ExchangeTimeout))
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// sameHeader says whether a and b hold the same names and values (a nil
// value and none the same).
func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || strings.Join(va, "\n") != strings.Join(vb, "\n") {
			return false
		}
	}
	return true
}

// recordedProxy is openProxy keeping every request's record in recs.
func recordedProxy(t *testing.T, edge, upstream string, recs *edgetest.Records) *edgeServer {
	t.Helper()
	return openRecordedProxy(t, edge, upstream, gateway.ProxyOptions{DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second,
		IdleConnTimeout: time.Minute, MaxIdleConnsPerHost: 4}, recs)
}
