package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// MaxLeanBody is the largest request body the lean path sends; larger
// and streamed (chunked) uploads go through httputil.ReverseProxy, whose
// transport reads the answer while the body is still being sent.
const MaxLeanBody = 64 << 10

// lean reports whether forward can send r itself. Upgrades (WebSocket),
// Expect: 100-continue and large or streamed bodies go through
// httputil.ReverseProxy.
func (p *proxy) lean(r *http.Request) bool {
	return p.upstream != nil && Lean(r.ContentLength, r.Header.Get("Upgrade") != "", r.Header.Get("Expect") != "", r.ProtoAtLeast(1, 1))
}

// Lean reports whether a request the proxy decides takes the lean path
// (forward) rather than httputil.ReverseProxy: a body of known length up
// to MaxLeanBody, no Upgrade, no Expect, HTTP/1.1. api/fastedge asks it
// before it reads a body, to send the others to the net/http server.
func Lean(contentLength int64, upgrade, expect, http11 bool) bool {
	return contentLength >= 0 && contentLength <= MaxLeanBody && !upgrade && !expect && http11
}

// forward sends an allowed request to the upstream on a pooled connection
// and copies the answer back: the request's own header map is sent (after
// removing hop-by-hop headers), the answer's header slices are handed to
// the response, and the body goes through a pooled buffer. A request
// that fails on a connection the upstream closed (StaleConnError) is sent
// once more, on a newly dialed connection, when Replayable says it may
// be, as api/fastedge's client does; the other idle connections are
// closed first: they are as likely to be dead (an upstream restart
// closes them all).
//
// When the server's ResponseWriter is a BodySender, forward hands it the
// answer's body instead of copying it and reports true: the request is
// recorded when the server closes that body (sentBody).
func (p *proxy) forward(ex *proxyExchange, w *responseRecorder, r *http.Request, uri string) (sent bool) {
	removeHopHeaders(r.Header)
	p.setUpstreamHeaders(r.Header, r, ex)
	ctx := r.Context()
	start := time.Now()
	var resp *http.Response
	var pc *upstreamConn
	for attempt := 0; ; attempt++ {
		var err error
		pc, err = p.upstream.get(ctx, attempt > 0)
		if err == nil {
			resp, err = p.send(ctx, pc, r, uri)
			if err != nil {
				p.upstream.discard(pc)
			}
		}
		if err == nil {
			break
		}
		if attempt == 0 && StaleConnError(err) && ctx.Err() == nil {
			p.upstream.closeIdle()
			if Replayable(r.Method, r.ContentLength != 0) {
				continue
			}
		}
		ex.upstreamDur = time.Since(start)
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		p.answerUpstreamError(w, r, err, ex)
		return false
	}
	ex.upstreamDur = time.Since(start)
	if resp.StatusCode >= 500 {
		ex.errCategory = metrics.ErrorUpstream5xx
	}

	h := w.Header()
	connectionTokens := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if ForwardedResponseHeader(k, connectionTokens) {
			h[k] = vv
		}
	}
	stream := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	if bs, ok := w.ResponseWriter.(BodySender); ok {
		p.sendBody(ex, w, bs, r, resp, pc, stream)
		return true
	}
	w.WriteHeader(resp.StatusCode)
	if stream {
		p.upstream.release(pc)
	}
	complete := copyBody(w, resp.Body, stream)
	for k, vv := range resp.Trailer {
		h[k] = vv
	}
	if complete {
		resp.Body.Close()
		if !resp.Close {
			p.upstream.put(pc)
			return false
		}
	}
	p.upstream.discard(pc)
	if !complete && ctx.Err() == nil {
		// The upstream broke off mid-body: abort the client's response
		// too, so it cannot mistake a short body for a whole one.
		panic(http.ErrAbortHandler)
	}
	return false
}

// send writes r on pc and reads the answer's head (skipping 1xx).
func (p *proxy) send(ctx context.Context, pc *upstreamConn, r *http.Request, uri string) (*http.Response, error) {
	// A cancelled request (the client went away) unblocks the I/O by
	// expiring the connection's deadline; the connection is then closed.
	stop := context.AfterFunc(ctx, func() { pc.SetDeadline(time.Unix(1, 0)) })
	err := writeRequest(pc, r, uri)
	if err != nil {
		stop()
		return nil, err
	}
	if p.upstream.headerTimeout > 0 {
		pc.SetReadDeadline(time.Now().Add(p.upstream.headerTimeout))
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(pc.br, r)
		if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
			// The lean path never asks for an upgrade (see lean): a 101
			// would turn the pooled connection into a tunnel.
			err = ErrUnaskedUpgrade
		}
		if err != nil || resp.StatusCode >= 200 {
			break
		}
	}
	if err != nil {
		stop()
		if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() == nil {
			return nil, ErrUpstreamHeaderTimeout
		}
		return nil, err
	}
	if !stop() {
		resp.Body.Close()
		return nil, ctx.Err()
	}
	pc.SetReadDeadline(time.Time{})
	return resp, nil
}

// writeRequest writes an HTTP/1.1 request from the incoming one: its
// method, the (cleaned) URI, Host, the header map as it now is, and the
// body, whose length is known and small (see lean).
func writeRequest(pc *upstreamConn, r *http.Request, uri string) error {
	bw := pc.bw
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	for k, vv := range r.Header {
		if k == "Host" || k == "Content-Length" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeHeaderValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		var num [20]byte
		bw.Write(strconv.AppendInt(num[:0], r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if _, err := io.CopyN(bw, r.Body, r.ContentLength); err != nil {
			return err
		}
	case r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH":
		bw.WriteString("Content-Length: 0\r\n\r\n")
	default:
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// writeHeaderValue writes v with any CR or LF turned into a space, as
// net/http's Header.Write does: a value apiwarden adds (an owner id set
// through the admin API) must never be able to start a header of its own.
func writeHeaderValue(bw *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\r\n") {
		bw.WriteString(v)
		return
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			bw.WriteByte(' ')
		} else {
			bw.WriteByte(c)
		}
	}
}

// copyBody copies the upstream's body to the client, flushing each write
// when the answer is a stream, and reports whether it reached the end.
func copyBody(w http.ResponseWriter, body io.Reader, stream bool) bool {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	flusher, _ := w.(http.Flusher)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false // the client went away
			}
			if stream && flusher != nil {
				flusher.Flush()
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are
// never forwarded.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func hopHeader(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

// listed reports whether a Connection header names k.
func listed(connection []string, k string) bool {
	for _, v := range connection {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return true
			}
		}
	}
	return false
}

// removeHopHeaders deletes the hop-by-hop headers and those the
// Connection header names, keeping "TE: trailers", which ends-to-end
// semantics need.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				h.Del(tok)
			}
		}
	}
	te := h.Get("Te")
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if trailersTE(te) {
		h["Te"] = []string{"trailers"}
	}
}

// trailersTE says whether a TE value is "trailers", the one hop-by-hop
// value forwarded.
func trailersTE(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "trailers") }

// ForwardedRequestHeader says whether one request header (its name
// canonical, as net/http and fasthttp write it) is forwarded as
// removeHopHeaders leaves a request: not a hop-by-hop header (but "TE:
// trailers", sent as "trailers"), not a header the request's Connection
// values name. Framing (Host, Content-Length) and scrubbing
// (ScrubHeaderValue) are the caller's. Safe for concurrent use.
func ForwardedRequestHeader(name, value string, connection []string) (out string, keep bool) {
	if listed(connection, name) {
		return "", false
	}
	if hopHeader(name) {
		if name == "Te" && trailersTE(value) {
			return "trailers", true
		}
		return "", false
	}
	return value, true
}

// ForwardedResponseHeader says whether one header of the upstream's
// answer (name canonical) reaches the client, as forward copies them:
// not hop-by-hop, not named by the answer's Connection values.
func ForwardedResponseHeader(name string, connection []string) bool {
	return !hopHeader(name) && !listed(connection, name)
}
