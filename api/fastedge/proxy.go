package fastedge

import (
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// In proxy mode every request on the listener is the proxy's. The common
// one — HTTP/1.1, a body of known length up to gateway.MaxLeanBody, no
// Upgrade, no Expect (gateway.Lean) — is decided and forwarded here, on
// fasthttp's goroutine, by the gateway's own proxy handler through a
// net/http-shaped request and a ResponseWriter over fasthttp's response
// (proxyWriter); the upstream's body is sent by fasthttp after the
// handler returns (gateway.BodySender), so streamed answers still arrive
// as they come. Every other request, and any the conversion could read
// differently from net/http, is handed with its connection to the
// net/http server (handoff.go).

// serveProxy routes a proxied request to the lean path or the handoff.
func (s *Server) serveProxy(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	if !gateway.Lean(contentLength(h), h.Peek("Upgrade") != nil, h.Peek("Expect") != nil, h.IsHTTP11()) {
		s.handoff(ctx)
		return
	}
	r, ok := request(ctx)
	if !ok {
		s.handoff(ctx)
		return
	}
	w := s.writers.Get().(*proxyWriter)
	w.reset(s, ctx)
	defer s.recoverPanic(ctx)
	s.proxy.ServeHTTP(w, r)
	if w.body == nil {
		w.release()
	}
}

// recoverPanic turns a panic of the proxy handler into what net/http makes
// of one: the panic is logged and the connection closed. fasthttp itself
// would let it end the process.
func (s *Server) recoverPanic(ctx *fasthttp.RequestCtx) {
	if v := recover(); v != nil {
		s.log.Error("panic serving a proxied request", "panic", v)
		ctx.Response.Reset()
		ctx.SetStatusCode(http.StatusInternalServerError)
		ctx.SetConnectionClose()
	}
}

// token reports whether a header name is an RFC 9110 token, as net/http
// requires.
func token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenByte(c) {
			return false
		}
	}
	return true
}

// tokenByte reports whether c may be part of an RFC 9110 token.
func tokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// fieldValue reports whether a header value has no control byte but
// tab, as net/http requires.
func fieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// request builds the net/http request the gateway's proxy reads, as
// net/http's server would: canonical header keys, Host out of the header
// map, the body read from fasthttp's stream. Strings are copies: the
// record outlives fasthttp's buffers. It reports false for a request
// net/http might read differently from fasthttp — a target not in origin
// form, a header name that is not a token, a value with a control byte
// (net/http answers 400 to those; fasthttp v1.79's parser already
// refuses the last two, this keeps the lean path safe if one did not) —
// which goes to net/http whole.
func request(ctx *fasthttp.RequestCtx) (*http.Request, bool) {
	h := &ctx.Request.Header
	uri := string(h.RequestURI())
	if uri == "" || uri[0] != '/' {
		return nil, false
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, false
	}
	header := make(http.Header, h.Len())
	for k, v := range h.All() {
		if !token(k) || !fieldValue(v) {
			return nil, false
		}
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		if key == "Host" {
			continue
		}
		header[key] = append(header[key], string(v))
	}
	r := &http.Request{Method: string(h.Method()), URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Host: string(h.Host()), RemoteAddr: ctx.RemoteAddr().String(), RequestURI: uri,
		ContentLength: contentLength(h), Body: http.NoBody}
	if r.ContentLength > 0 {
		r.Body = io.NopCloser(ctx.RequestBodyStream())
	}
	return r, true
}

// contentLength is the request body's length as net/http reads it: -1
// for chunked, 0 for a request without a body (fasthttp's -2).
func contentLength(h *fasthttp.RequestHeader) int64 {
	switch n := h.ContentLength(); {
	case n == -2:
		return 0
	case n < 0:
		return -1
	default:
		return int64(n)
	}
}

// proxyWriter is the gateway's ResponseWriter over fasthttp's response.
// Error answers are written into the response body; an upstream answer's
// body is sent by fasthttp from the reader SendBody gives, through the
// writer itself, whose Close returns it to the pool.
type proxyWriter struct {
	s        *Server
	ctx      *fasthttp.RequestCtx
	h        http.Header
	status   int
	body     io.ReadCloser // the upstream's, once SendBody is called
	trailers []string
}

var _ gateway.BodySender = (*proxyWriter)(nil)

func newWriterPool() sync.Pool {
	return sync.Pool{New: func() any { return &proxyWriter{h: make(http.Header, 16)} }}
}

func (w *proxyWriter) reset(s *Server, ctx *fasthttp.RequestCtx) {
	w.s, w.ctx, w.status, w.body, w.trailers = s, ctx, 0, nil, w.trailers[:0]
}

// release returns the writer to the pool once fasthttp is done with it.
func (w *proxyWriter) release() {
	clear(w.h)
	w.ctx, w.body = nil, nil
	w.s.writers.Put(w)
}

func (w *proxyWriter) Header() http.Header { return w.h }

// WriteHeader copies the status and the header map into fasthttp's
// response; 1xx answers are not passed on (the lean path sends no
// Expect and asks for no upgrade).
func (w *proxyWriter) WriteHeader(status int) {
	if w.status != 0 || status < http.StatusOK {
		return
	}
	w.status = status
	dst := &w.ctx.Response.Header
	for name, values := range w.h {
		switch name {
		case "Content-Length":
			continue
		case "Trailer":
			for _, v := range values {
				for _, t := range strings.Split(v, ",") {
					if t = strings.TrimSpace(t); t != "" {
						w.trailers = append(w.trailers, textproto.CanonicalMIMEHeaderKey(t))
					}
				}
				dst.AddTrailer(v)
			}
			continue
		}
		for _, v := range values {
			dst.Add(name, v)
		}
	}
	w.ctx.SetStatusCode(status)
}

func (w *proxyWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.ctx.Response.AppendBody(b)
	return len(b), nil
}

// SendBody has fasthttp send body after the handler returns.
func (w *proxyWriter) SendBody(status int, body io.ReadCloser, size int64) {
	w.WriteHeader(status)
	w.body = body
	w.ctx.SetBodyStream(w, int(size))
}

// Read passes the upstream's body on; at its end the trailers the
// gateway put in the header map go into fasthttp's response.
func (w *proxyWriter) Read(b []byte) (int, error) {
	n, err := w.body.Read(b)
	if err == io.EOF && len(w.trailers) > 0 {
		for k, vv := range w.h {
			for _, v := range vv {
				if isTrailer(w.trailers, k) {
					w.ctx.Response.Header.Add(k, v)
				}
			}
		}
	}
	return n, err
}

// Close is called by fasthttp once the body is sent or could not be.
func (w *proxyWriter) Close() error {
	err := w.body.Close()
	w.release()
	return err
}

func isTrailer(names []string, k string) bool {
	for _, n := range names {
		if n == k {
			return true
		}
	}
	return false
}
