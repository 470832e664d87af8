package fastedge

import (
	"bytes"
	"crypto/rand"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// How the proxy edge reads request bodies. fasthttp v1.79 keeps a
// connection's read buffer for the connection's whole life when
// StreamRequestBody is on (server.go, serveConn: "When StreamRequestBody
// is set to true, we cannot safely release br"), reduce_idle_memory or
// not: 10,000 waiting keep-alive connections held 10,000 buffers of
// max_header_bytes + 4 KiB. So the proxy edge runs without it: fasthttp
// reads a body whole before the handler runs and, with
// reduce_idle_memory, returns the read buffer to its pool as soon as a
// request is read and nothing more is buffered.
//
// A request whose body must stay on the connection for net/http —
// chunked, or longer than gateway.MaxLeanBody — is recognised from its
// header in deferBody, before fasthttp reads any of its body: its framing
// is set aside in a header of its own (deferredHeader, whose value starts
// with the server's nonce, so a client cannot forge it) and fasthttp is
// told the request has no body. The handler hands it to net/http with the
// framing restored and the body still on the connection (handoff.go):
// fasthttp has decided only whether the body is chunked or of which
// length, net/http reads it, and fasthttp reads nothing more of that
// connection. Expect is still answered by fasthttp, before the body
// (none, for fasthttp) is read.

// deferredHeader carries a deferred request's framing from deferBody to
// the handler: the nonce, then the Content-Length fasthttp parsed, -1
// for chunked.
const deferredHeader = "Apiwarden-Deferred-Framing"

// newNonce is a server's deferredHeader prefix.
func newNonce() []byte {
	return []byte(rand.Text() + " ")
}

// deferBody is fasthttp's HeaderReceived in proxy mode: it gives the body
// the read_timeout and the lean path's cap, and defers a body longer than
// that cap or chunked. A request without a body gets no read_timeout:
// fasthttp reads nothing more of it, and the deadline would cost a call
// a request for nothing (docs/BENCHMARKS.md, "The lean path's own cost").
// It runs on the connection's goroutine and changes only that request's
// header.
func (s *Server) deferBody(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	conf := fasthttp.RequestConfig{MaxRequestBodySize: gateway.MaxLeanBody}
	n := h.ContentLength() // -1 chunked, -2 no body
	if n == -1 || n > 0 {
		conf.ReadTimeout = s.bodyTimeout
	}
	if n == -1 || n > gateway.MaxLeanBody {
		h.SetBytesV(deferredHeader, strconv.AppendInt(bytes.Clone(s.nonce), int64(n), 10))
		h.SetContentLength(0)
	}
	return conf
}

// undefer restores the framing that deferBody set aside and reports
// whether it did: the request's body is then still on the connection. A
// deferredHeader without the nonce (a client's) is left as it is. Like
// deferBody it changes only h, on the connection's goroutine; the nonce
// is only read after New.
func (s *Server) undefer(h *fasthttp.RequestHeader) bool {
	num, ok := bytes.CutPrefix(h.Peek(deferredHeader), s.nonce)
	if !ok {
		return false
	}
	n, err := strconv.Atoi(string(num))
	if err != nil {
		return false
	}
	h.Del(deferredHeader)
	h.SetContentLength(n) // -1 sets Transfer-Encoding: chunked
	return true
}

// serveProxyMode runs before serveProxy, on the connection's goroutine: a
// deferred request goes to net/http; any other, its body read whole by
// fasthttp, to the lean path or the handoff (serveProxy decides).
func (s *Server) serveProxyMode(ctx *fasthttp.RequestCtx) {
	// A deferred request has no body for fasthttp; a client's own
	// deferredHeader with a body is handed off with that body.
	if ctx.Request.Header.Peek(deferredHeader) != nil {
		s.handoff(ctx)
		return
	}
	s.serveProxy(ctx)
}
