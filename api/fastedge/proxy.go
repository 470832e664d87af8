package fastedge

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// In proxy mode every request on the listener is the proxy's. The common
// one — HTTP/1.1, a body of known length up to gateway.MaxLeanBody, no
// Upgrade, no Expect (gateway.Lean) — is decided and forwarded here, on
// fasthttp's goroutine, without net/http: gateway.DecideProxy decides it
// from the fasthttp request, the request headers are scrubbed and filtered
// by the gateway's rules while they are copied into the upstream request,
// the upstream client (upstream.go) sends it, and the answer's body is
// sent by fasthttp from the upstream's stream after the handler returns
// (upstreamBody), so streamed answers still arrive as they come. Every
// other request, and any the gateway says net/http might read
// differently, is handed with its connection to the net/http server
// (handoff.go).

// serveProxy routes a proxied request to the lean path or the handoff.
func (s *Server) serveProxy(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	if s.up == nil || !gateway.Lean(contentLength(h), h.Peek("Upgrade") != nil, h.Peek("Expect") != nil, h.IsHTTP11()) {
		s.handoff(ctx)
		return
	}
	sc := s.scratch.Get().(*proxyScratch)
	defer s.putScratch(sc)
	in := &sc.in
	if !s.proxyInbound(ctx, in) {
		s.handoff(ctx)
		return
	}
	defer s.recoverPanic(ctx)
	// The lists are emptied before the call ends, not deferred: an
	// allowed request's values in them are the call's (DecideProxy).
	resp, up := &sc.resp, &sc.up
	call, a, ok := s.gw.DecideProxy(resp, up, in)
	if call == nil {
		if ok {
			writeAnswer(ctx, in.RequestID, resp, a)
		}
		resp.Reset()
		up.Reset()
		if !ok {
			s.handoff(ctx)
		}
		return
	}
	// The exchange and the answer are frames of their own beside this
	// one, so the upstream write and read run under two small frames
	// (docs/BENCHMARKS.md, "Stacks per connection on the fasthttp proxy").
	b := s.bodies.Get().(*upstreamBody)
	err := s.exchange(b, ctx, call, up)
	up.Reset()
	s.forward(b, ctx, call, in, resp, err)
}

// proxyScratch is what serveProxy gathers and fills for one request, in
// one pooled object rather than three: each sync.Pool round trip costs
// more when the request's goroutine comes back from the upstream on
// another P than it left (docs/BENCHMARKS.md, "apiwarden above its
// floor"). The lists are the answer's own headers and the upstream's
// (DecideProxy's resp and up).
type proxyScratch struct {
	in       gateway.ProxyInbound
	resp, up gateway.Fields
}

// putScratch empties sc, keeping its X-Forwarded-For slice's array and
// its (emptied) lists, and pools it.
func (s *Server) putScratch(sc *proxyScratch) {
	in := &sc.in
	clear(in.Header.ForwardedFor) // views of a request's buffers
	forwardedFor := in.Header.ForwardedFor[:0]
	*in = gateway.ProxyInbound{}
	in.Header.ForwardedFor = forwardedFor
	s.scratch.Put(sc)
}

// writeAnswer writes the gateway's own answer to a proxied request (a
// refusal, or a failed forward) with its headers and request id.
func writeAnswer(ctx *fasthttp.RequestCtx, requestID string, h *gateway.Fields, a gateway.Answer) {
	ctx.Response.Header.Set("X-Request-Id", requestID)
	addAnswerFields(&ctx.Response.Header, h)
	ctx.SetStatusCode(a.Status)
	ctx.SetBody(a.Body)
}

// recoverPanic turns a panic of the lean path into what net/http makes
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

// proxyInbound gathers what the gateway reads of a proxied request, in
// one pass over the headers, and reports false for a request net/http
// might read differently from fasthttp — no Host, a header name that is
// not a token, a value with a control byte (net/http answers 400 to
// those; fasthttp v1.79's parser already refuses the last two, this keeps
// the lean path safe if one did not) — which goes to net/http whole.
// Strings are views of fasthttp's request buffers, valid until the
// answer is sent; DecideProxy copies what the record keeps.
func (s *Server) proxyInbound(ctx *fasthttp.RequestCtx, in *gateway.ProxyInbound) bool {
	h := &ctx.Request.Header
	target := b2s(h.RequestURI())
	path, query := splitTarget(target)
	if len(h.Host()) == 0 {
		return false
	}
	in.Method, in.Path, in.RawQuery, in.Peer, in.Target = b2s(h.Method()), path, query, peer(ctx), target
	in.ContentLength = contentLength(h)
	in.Host = b2s(h.Host())
	country := s.gw.CountryHeader()
	n := len(target)
	for k, v := range h.All() {
		if !Token(k) || !FieldValue(v) {
			return false
		}
		name, value := b2s(k), b2s(v)
		if name == fasthttp.HeaderHost {
			continue
		}
		n += in.AddHeader(name, value, country)
	}
	in.HeaderBytes = n // RequestID is the caller's: DecideProxy names the request
	return true
}

// b2s is b as a string without a copy: valid while fasthttp keeps b.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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

// exchange sends the request upstream, once it holds a slot, and reads
// the answer's head into b.resp; b.slot says it holds the slot and
// b.upstream is how long it took.
//
//go:noinline
func (s *Server) exchange(b *upstreamBody, ctx *fasthttp.RequestCtx, call *gateway.ProxyCall, up *gateway.Fields) error {
	start := time.Since(s.origin)
	slot, err := s.up.acquire()
	if err == nil {
		b.resp.Header.SetNoDefaultContentType(true)
		upstreamRequest(b.req, ctx, call, up)
		err = s.up.do(b.req, b.resp)
		b.req.Reset() // it refers to the client's body
	}
	b.slot, b.upstream = slot, time.Since(s.origin)-start
	return err
}

// forward hands the upstream's answer in b, or the failure err of its
// exchange, to fasthttp; the call ends when fasthttp closes the answer's
// body, or here when there is none or the exchange failed.
//
//go:noinline
func (s *Server) forward(b *upstreamBody, ctx *fasthttp.RequestCtx, call *gateway.ProxyCall, in *gateway.ProxyInbound, resp *gateway.Fields, err error) {
	ures := b.resp
	if err == nil && ures.StatusCode() == fasthttp.StatusSwitchingProtocols {
		// The lean path never asks for an upgrade (see Lean): the client
		// closes a connection that answered 101.
		err = gateway.ErrUnaskedUpgrade
	}
	if err != nil {
		s.up.release(b.slot)
		took := b.upstream
		b.recycle(s)
		a := call.Failed(resp, in, err, took)
		writeAnswer(ctx, in.RequestID, resp, a)
		resp.Reset()
		return
	}
	// Field by field: b is as recycle left it but for exchange's slot
	// and time, and a composite literal would be built in this frame first.
	b.s, b.call, b.ctx, b.status = s, call, ctx, ures.StatusCode()
	stream := b.copyHeaders(&ctx.Response.Header, resp, in.RequestID)
	// The proxy's own headers the upstream did not set (copyHeaders took
	// its names out of resp), in a frame beside copyHeaders, not under it.
	addAnswerFields(&ctx.Response.Header, resp)
	resp.Reset() // before the call can end, below or in b.Close
	ctx.SetStatusCode(b.status)
	body := ures.BodyStream()
	if body == nil {
		b.whole(&ctx.Response)
		b.Close()
		return
	}
	if stream {
		s.up.release(b.slot) // an event stream may last for hours
		b.slot = false
	}
	b.r = body
	size := ures.Header.ContentLength()
	if stream || size < 0 {
		size = -1
	}
	ctx.SetBodyStream(b, size)
}

// whole moves the answer's body, read whole by the upstream client
// (leanTransport), into dst without a copy, or, for an answer without a
// body (HEAD, 204, 304, or empty), sends its length alone.
func (b *upstreamBody) whole(dst *fasthttp.Response) {
	body := b.resp.SwapBody(nil)
	if len(body) == 0 {
		b.resp.SwapBody(body)
		if n := b.resp.Header.ContentLength(); n > 0 {
			dst.Header.SetContentLength(n)
			dst.SkipBody = true
		}
		b.complete = true
		return
	}
	b.resp.SwapBody(dst.SwapBody(body)) // the pooled buffers change hands
	b.bytes, b.complete = int64(len(body)), true
}

// maxWholeAnswer is the largest answer body, of known length and not an
// event stream, that the upstream client reads whole (leanTransport)
// instead of handing fasthttp a body stream: the common small answer is
// then sent with its headers as one plain body, and its upstream
// connection and slot are free before the client is written to
// (docs/BENCHMARKS.md, "The lean path's own cost"). Larger answers stream.
const maxWholeAnswer = 16 << 10

// upstreamRequest writes into req what the upstream is sent of the
// client's request: method, target, Host, the headers the gateway's rules
// keep (hop-by-hop and Connection-named ones removed, keys and
// apiwarden's own scrubbed, those named in up replaced by up's), and the
// body: call's request, sent to call.Target. up's fields are not added
// to req's header but carried as a user value of req, for writeRequest
// to append to the head it writes (gatewayFields): valid until the
// exchange returns.
func upstreamRequest(req *fasthttp.Request, ctx *fasthttp.RequestCtx, call *gateway.ProxyCall, up *gateway.Fields) {
	src, dst := &ctx.Request.Header, &req.Header
	req.UseHostHeader = true
	// The names copied are already canonical: the server's parser
	// normalised the client's, and up's are the gateway's. So the
	// copy skips fasthttp's normalising pass (Reset turns it back on).
	dst.DisableNormalizing()
	dst.SetMethodBytes(src.Method())
	dst.SetRequestURI(call.Target)
	dst.SetHostBytes(src.Host())
	copyClientHeaders(dst, src, up, call)
	req.SetUserValue(gatewayFields{}, up)
	// The body fasthttp read whole (serveProxyMode): the upstream request
	// is sent before the handler returns and fasthttp reuses it.
	if b := ctx.Request.Body(); len(b) > 0 {
		req.SetBodyRaw(b)
	}
}

// copyClientHeaders adds the client's headers in src to dst that the
// gateway keeps (ProxyCall.UpstreamValue). It is a frame of its own under
// upstreamRequest, its iterator off the frames beside it
// (docs/BENCHMARKS.md, "Stacks per connection on the fasthttp proxy").
//
//go:noinline
func copyClientHeaders(dst, src *fasthttp.RequestHeader, up *gateway.Fields, call *gateway.ProxyCall) {
	var connection []string
	for _, v := range src.PeekAll("Connection") {
		connection = append(connection, b2s(v))
	}
	if src.ConnectionClose() {
		connection = append(connection, "close")
	}
	for k, v := range src.All() {
		name := b2s(k)
		switch name {
		case fasthttp.HeaderHost, fasthttp.HeaderContentLength, fasthttp.HeaderTransferEncoding:
			continue // framing is the client's
		}
		if clean, keep := call.UpstreamValue(name, b2s(v), connection, up); keep {
			dst.Add(name, clean)
		}
	}
}

// addHeaders adds the headers the gateway tells the upstream to dst.
func addHeaders(dst *fasthttp.RequestHeader, up *gateway.Fields) {
	for _, f := range up.List() {
		dst.Add(f.Name, f.Value)
	}
}

// addAnswerFields adds the gateway's answer headers h to dst, but
// Content-Length, which fasthttp sets from the body (copyHeader's rule).
func addAnswerFields(dst *fasthttp.ResponseHeader, h *gateway.Fields) {
	for _, f := range h.List() {
		if f.Name != fasthttp.HeaderContentLength {
			dst.Add(f.Name, f.Value)
		}
	}
}

// upstreamBody is an upstream answer's body as fasthttp sends it to the
// client: it counts the bytes, passes the trailers on at the end, and its
// Close (called by fasthttp once, when the body was sent or could not be)
// returns the upstream connection, or closes it when the answer was not
// read to the end, and records the request.
type upstreamBody struct {
	s    *Server
	call *gateway.ProxyCall
	// req is the request sent upstream, empty but while exchange sends
	// it: kept with the body, not taken from fasthttp's pool a request.
	req      *fasthttp.Request
	resp     *fasthttp.Response
	ctx      *fasthttp.RequestCtx
	r        io.Reader
	status   int
	bytes    int64
	upstream time.Duration
	trailers []string // names the upstream announced
	// The answer's Cache-Status and X-Cache values, views of resp's
	// header (copyHeaders).
	cacheStatus, xCache []byte
	slot                bool // holds a max_conns_per_host slot
	complete            bool
}

// newBodyPool returns the pool of upstreamBody. Each keeps its Request
// and its answer's Response, and that Response its body buffer, from one
// request to the next: a small answer's body is read into it and swapped with the
// client's answer's buffer (whole), which the server keeps too, so the
// buffers change hands without a pool or an allocation.
func newBodyPool() sync.Pool {
	return sync.Pool{New: func() any {
		resp := new(fasthttp.Response)
		resp.KeepBodyBuffer = true
		return &upstreamBody{req: new(fasthttp.Request), resp: resp}
	}}
}

// copyHeaders copies the upstream answer's headers the client may see
// into dst, and the request id where the upstream set none. It reads the
// answer's headers once: the names the upstream set with a value are
// taken out of resp on the way (resp is the request's own, reset after
// it), so what is left of resp is the proxy's own headers (rate limits)
// the upstream did not set, which the caller then adds (addAnswerFields), as
// the net/http path's header map lets the upstream's win; and the cache
// status the record keeps is noted for Close. It says whether the answer
// is a stream (no length, or an event stream).
//
// Every name written into dst is canonical already (the upstream's,
// trailers' too, as fasthttp parsed them, resp's as the gateway sets
// them), so dst skips fasthttp's normalising pass for the rest of the
// answer; fasthttp still refuses names with bytes a name may not hold
// and strips CR and LF from values.
func (b *upstreamBody) copyHeaders(dst *fasthttp.ResponseHeader, resp *gateway.Fields, requestID string) (stream bool) {
	src := &b.resp.Header
	dst.DisableNormalizing()
	var connection []string
	for _, v := range src.PeekAll("Connection") {
		connection = append(connection, b2s(v))
	}
	idSet := false
	for k, v := range src.All() {
		name := b2s(k)
		switch {
		case name == fasthttp.HeaderTrailer:
			b.announceTrailers(dst, v)
		case name == fasthttp.HeaderContentLength:
		case gateway.ForwardedResponseHeader(name, connection):
			dst.AddBytesKV(k, v)
		}
		if len(v) == 0 {
			continue
		}
		resp.Remove(name)
		switch name {
		case "X-Request-Id":
			idSet = true
		case "Cache-Status":
			if b.cacheStatus == nil {
				b.cacheStatus = v
			}
		case "X-Cache":
			if b.xCache == nil {
				b.xCache = v
			}
		}
	}
	if !idSet {
		dst.Set("X-Request-Id", requestID)
	}
	return src.ContentLength() < 0 || eventStream(src)
}

// announceTrailers notes the trailer names of the upstream's Trailer
// value v and announces them in dst. fasthttp's parse of the answer made
// them canonical (TestProxyTrailerNamesStayCanonical).
func (b *upstreamBody) announceTrailers(dst *fasthttp.ResponseHeader, v []byte) {
	for _, t := range strings.Split(string(v), ",") {
		if t = strings.TrimSpace(t); t != "" {
			b.trailers = append(b.trailers, t)
		}
	}
	dst.AddTrailerBytes(v) //nolint:errcheck // a name fasthttp refuses is not announced, as before
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.bytes += int64(n)
	if err == io.EOF {
		b.complete = true
		// The trailers came with the end of the upstream's stream
		// (upstreamStream); an answer cut off (readWhole) has none.
		if trailers, ok := b.r.(interface{ Trailer(string) []byte }); ok {
			for _, t := range b.trailers {
				if v := trailers.Trailer(t); len(v) > 0 {
					b.ctx.Response.Header.SetBytesV(t, v)
				}
			}
		}
	}
	return n, err
}

// Close ends the exchange.
func (b *upstreamBody) Close() error {
	cache := b.cacheStatus
	if len(cache) == 0 {
		cache = b.xCache
	}
	if b.r != nil {
		b.resp.CloseBodyStream()
	}
	b.s.up.release(b.slot)
	b.call.Finish(b.status, b.bytes, b.upstream, string(cache))
	b.recycle(b.s)
	return nil
}

// recycle resets b, keeping its Request, Response and trailer list, and
// puts it back in s's pool.
func (b *upstreamBody) recycle(s *Server) {
	resp := b.resp
	resp.Reset() // the body stream closed, the body buffer kept
	*b = upstreamBody{req: b.req, resp: resp, trailers: b.trailers[:0]}
	s.bodies.Put(b)
}
