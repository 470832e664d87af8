package fastedge

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// FuzzDefer: whatever request header fasthttp parses, deferBody defers
// exactly the bodies the lean path cannot read whole (chunked, longer than
// gateway.MaxLeanBody), leaving fasthttp a header without a body; undefer
// gives the handoff back the Content-Length or chunked framing fasthttp
// parsed; and a client's own deferredHeader is never taken for the
// server's.
func FuzzDefer(f *testing.F) {
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	f.Add("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	f.Add("GET / HTTP/1.1\r\nHost: a\r\nApiwarden-Deferred-Framing: x -1\r\n\r\n")
	f.Add("GET / HTTP/1.0\r\n\r\n")
	s := &Server{nonce: newNonce()}
	f.Fuzz(func(t *testing.T, raw string) {
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return
		}
		n, expect := h.ContentLength(), bytes.Clone(h.Peek("Expect"))
		if s.undefer(&h) {
			t.Fatalf("a client's header was taken for the server's: %q", h.Peek(deferredHeader))
		}
		s.deferBody(&h)
		deferred := n == -1 || n > gateway.MaxLeanBody
		if !deferred {
			if h.ContentLength() != n || !bytes.Equal(h.Peek("Expect"), expect) {
				t.Fatalf("a lean request's header changed: length %d → %d", n, h.ContentLength())
			}
			return
		}
		if h.ContentLength() != 0 {
			t.Fatalf("deferred, fasthttp still sees length %d", h.ContentLength())
		}
		if !s.undefer(&h) {
			t.Fatal("undefer did not find deferBody's header")
		}
		if h.ContentLength() != n || !bytes.Equal(h.Peek("Expect"), expect) || h.Peek(deferredHeader) != nil {
			t.Fatalf("restored length %d, Expect %q, marker %q; want %d, %q, none",
				h.ContentLength(), h.Peek("Expect"), h.Peek(deferredHeader), n, expect)
		}
		if chunked := bytes.Contains(h.Header(), []byte("Transfer-Encoding: chunked")); chunked != (n == -1) {
			t.Fatalf("serialized header %q: chunked %v, want %v", h.Header(), chunked, n == -1)
		}
	})
}
