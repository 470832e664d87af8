package fastedge

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// serve routes a request: forward auth and check are decided here, the
// rest goes to the net/http fallback. Routing reads the path as sent, so
// any spelling the net/http router would read differently (percent-encoded,
// absolute-form) takes the fallback and is answered as net/http answers it.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	path, query := splitTarget(string(ctx.Request.Header.RequestURI()))
	method := ctx.Method()
	switch {
	case path == "/v1/check" && string(method) == fasthttp.MethodPost:
		in := s.inbound(ctx, path, query)
		in.BodyBytes = ctx.PostBody()
		s.answer(ctx, &in, s.gw.Check)
	case isAuthorize(path) && authorizeMethod(method):
		in := s.inbound(ctx, path, query)
		in.EnvoyForm = len(path) > len(authorizePrefix)
		s.answer(ctx, &in, s.gw.Authorize)
	default:
		s.fallback(ctx)
	}
}

const authorizePrefix = "/v1/authorize/"

// isAuthorize says whether a path as sent is /v1/authorize or Envoy's
// /v1/authorize/<path>.
func isAuthorize(path string) bool {
	return path == "/v1/authorize" || strings.HasPrefix(path, authorizePrefix)
}

// authorizeMethod says whether the router of the net/http edge has
// /v1/authorize for a method (gateway.Gateway.Routes); others answer 405
// through the fallback.
func authorizeMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}

// answer decides a request with decide and writes the answer, with the
// request id in X-Request-Id as the net/http edge's middleware sets it.
func (s *Server) answer(ctx *fasthttp.RequestCtx, in *gateway.Inbound, decide func(http.Header, *gateway.Inbound) gateway.Answer) {
	h := s.headers.Get().(http.Header)
	h["X-Request-Id"] = []string{in.RequestID}
	a := decide(h, in)
	copyHeader(&ctx.Response.Header, h)
	clear(h)
	s.headers.Put(h)
	ctx.SetStatusCode(a.Status)
	if a.Body != nil {
		ctx.SetBody(a.Body)
	}
}

// copyHeader adds the headers of h to a fasthttp response, but
// Content-Length, which fasthttp sets from the body.
func copyHeader(dst *fasthttp.ResponseHeader, h http.Header) {
	for name, values := range h {
		if name == "Content-Length" {
			continue
		}
		for _, v := range values {
			dst.Add(name, v)
		}
	}
}

// inbound gathers what the gateway reads of a request. Every string is a
// copy: the gateway's records outlive fasthttp's buffers.
func (s *Server) inbound(ctx *fasthttp.RequestCtx, path, query string) gateway.Inbound {
	h := &ctx.Request.Header
	in := gateway.Inbound{Method: string(h.Method()), Path: path, RawQuery: query, Peer: peer(ctx),
		RequestID: s.gw.RequestIDs().Keep(string(h.Peek("X-Request-Id"))), HeaderBytes: headerBytes(h),
		ContentLength: max(int64(h.ContentLength()), -1),
		Header: gateway.InboundHeader{
			Token:           string(h.Peek("X-Apiwarden-Token")),
			APIKey:          string(h.Peek("X-Api-Key")),
			Authorization:   string(h.Peek("Authorization")),
			Origin:          string(h.Peek("Origin")),
			UserAgent:       string(h.UserAgent()),
			ContentType:     string(h.ContentType()),
			ForwardedMethod: string(h.Peek("X-Forwarded-Method")),
			OriginalMethod:  string(h.Peek("X-Original-Method")),
			ForwardedURI:    string(h.Peek("X-Forwarded-Uri")),
			OriginalURI:     string(h.Peek("X-Original-Uri")),
		}}
	if name := s.gw.CountryHeader(); name != "" {
		in.Header.Country = string(h.Peek(name))
	}
	for _, v := range h.PeekAll("X-Forwarded-For") {
		in.Header.ForwardedFor = append(in.Header.ForwardedFor, string(v))
	}
	return in
}

// headerBytes counts the request target and headers as
// gateway.Inbound.HeaderBytes says (Host not counted, as net/http keeps
// it out of its header map).
func headerBytes(h *fasthttp.RequestHeader) int {
	n := len(h.RequestURI())
	for k, v := range h.All() {
		if string(k) != fasthttp.HeaderHost {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// peer is the socket peer: never a forwarded address.
func peer(ctx *fasthttp.RequestCtx) netip.Addr {
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// splitTarget splits a request target in origin form ("/path?query") into
// its path, percent-encoding kept, and its query. Any other form
// (absolute, authority, "*") gives an empty path, which no route of this
// package matches.
func splitTarget(target string) (path, query string) {
	if target == "" || target[0] != '/' {
		return "", ""
	}
	path, query, _ = strings.Cut(target, "?")
	return path, query
}
