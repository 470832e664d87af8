package loopedge

import (
	"net/http"
	"strconv"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// Everything here touches DecideProxy's two lists of header fields: a
// pair's resp (the answer's own headers, kept until its answer's head is
// written) and the loop's up (the upstream's, emptied as soon as the
// request is queued). The rules are the gateway's and api/fastedge/proxy.go's: what
// is forwarded each way, what is scrubbed, whose header wins.

// decide decides the pair's request: a refusal is answered at once (the
// request's body, if any, dropped as it comes); an allowed request is
// sent upstream once it holds a slot and a connection (send).
// It returns false, with nothing done, for a target the gateway leaves to
// net/http.
func (l *loop) decide(p *pair) bool {
	call, a, ok := l.gw.DecideProxy(&p.ex.resp, &l.up, &p.ex.in)
	return l.decided(p, call, a, ok, &l.up)
}

// decided does what decide says with DecideProxy's results, made on the
// loop or off it (async.go), up the upstream's header list they filled.
func (l *loop) decided(p *pair, call *gateway.ProxyCall, a gateway.Answer, ok bool, up *gateway.Fields) bool {
	ex := &p.ex
	if call == nil {
		if ok {
			p.client.out = l.appendAnswer(p.client.out, ex.in.RequestID, &ex.resp, a)
			p.discard = ex.req.contentLength
			p.closing = p.closing || ex.req.closeAfter
		}
		ex.resp.Reset()
		up.Reset()
		return ok
	}
	ex.call, ex.busy, ex.sent = call, true, time.Now()
	ex.bodyLeft, ex.headDone, ex.left, ex.bytes, ex.cache = ex.req.contentLength, false, 0, 0, ""
	mark := len(p.upstream.out)
	p.upstream.out = appendRequest(p.upstream.out, &ex.req, call, up)
	up.Reset()
	ex.replayed = false
	ex.replayable = gateway.Replayable(b2s(ex.req.method), ex.req.contentLength > 0)
	if ex.replayable {
		ex.request = append(ex.request[:0], p.upstream.out[mark:]...)
	}
	l.send(p)
	return true
}

// failed has the gateway answer the call in flight after cause (502,
// 504), and ends it.
func (l *loop) failed(p *pair, cause error) {
	ex := &p.ex
	a := ex.call.Failed(&ex.resp, &ex.in, cause, time.Since(ex.sent))
	ex.call = nil
	p.client.out = l.appendAnswer(p.client.out, ex.in.RequestID, &ex.resp, a)
	ex.resp.Reset()
}

// appendAnswer appends the gateway's own answer (a refusal, or a failed
// forward) with its headers h and request id, as fastedge's writeAnswer
// writes it.
func (l *loop) appendAnswer(out []byte, requestID string, h *gateway.Fields, a gateway.Answer) []byte {
	out = appendStatus(append(out, "HTTP/1.1 "...), a.Status)
	out = appendHeader(out, "X-Request-Id", requestID)
	out = h.AppendLines(out)
	out = l.appendDate(out)
	out = strconv.AppendInt(append(out, "Content-Length: "...), int64(len(a.Body)), 10)
	return append(append(out, "\r\n\r\n"...), a.Body...)
}

// appendRequest appends the request head the upstream is sent: method,
// call's target, Host, the client's headers the gateway's hop-by-hop and
// scrub rules keep and up does not replace, up's, and the client's
// Content-Length.
func appendRequest(out []byte, r *requestHead, call *gateway.ProxyCall, up *gateway.Fields) []byte {
	out = append(append(out, r.method...), ' ')
	out = append(append(out, call.Target...), " HTTP/1.1\r\nHost: "...)
	out = append(append(out, r.host...), "\r\n"...)
	var connection []string
	for _, f := range r.fields {
		if string(f.name) == "Connection" {
			connection = append(connection, b2s(f.value))
		}
	}
	for _, f := range r.fields {
		name := b2s(f.name)
		switch name {
		case "Host", "Content-Length":
			continue // framing is the client's
		}
		if clean, keep := call.UpstreamValue(name, b2s(f.value), connection, up); keep {
			out = appendHeader(out, name, clean)
		}
	}
	out = up.AppendLines(out)
	if r.hasLength {
		out = strconv.AppendInt(append(out, "Content-Length: "...), r.contentLength, 10)
		out = append(out, "\r\n"...)
	}
	return append(out, "\r\n"...)
}

// appendAnswerHead appends the client's answer head of the upstream's
// answer ex.answer: its status, the upstream's headers the client may
// see, the answer's own (rate limits) the upstream did not set, the
// request id where the upstream set none, the trailers it announced that
// the client may see (chunked.go), its Content-Length or chunked framing
// (of a chunked answer, or one framed by the upstream's close), and a
// Date where the upstream sent none. It notes the cache status the record
// keeps and empties ex.resp.
func (l *loop) appendAnswerHead(out []byte, ex *exchange) []byte {
	a, resp := &ex.answer, &ex.resp
	out = appendStatus(append(out, "HTTP/1.1 "...), a.status)
	var connection []string
	for _, f := range a.fields {
		if string(f.name) == "Connection" {
			connection = append(connection, b2s(f.value))
		}
	}
	idSet, dateSet := false, false
	var xCache string
	for _, f := range a.fields {
		name := b2s(f.name)
		if name == "Trailer" && a.chunked {
			a.announceTrailers(f.value, connection)
		}
		if name != "Content-Length" && gateway.ForwardedResponseHeader(name, connection) {
			out = appendHeader(out, name, b2s(f.value))
		}
		if len(f.value) == 0 {
			continue
		}
		resp.Remove(name)
		switch name {
		case "X-Request-Id":
			idSet = true
		case "Date":
			dateSet = true
		case "Cache-Status":
			if ex.cache == "" {
				ex.cache = string(f.value)
			}
		case "X-Cache":
			if xCache == "" {
				xCache = string(f.value)
			}
		}
	}
	if ex.cache == "" {
		ex.cache = xCache
	}
	if !idSet {
		out = appendHeader(out, "X-Request-Id", ex.in.RequestID)
	}
	out = resp.AppendLines(out)
	resp.Reset()
	if !dateSet {
		out = l.appendDate(out)
	}
	if len(a.trailers) > 0 {
		out = appendHeader(out, "Trailer", b2s(a.trailers))
	}
	if a.chunked || a.untilClose {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if a.hasLength && a.status != http.StatusNoContent && a.status != http.StatusNotModified {
		out = strconv.AppendInt(append(out, "Content-Length: "...), a.contentLength, 10)
		out = append(out, "\r\n"...)
	}
	return append(out, "\r\n"...)
}

func appendHeader(out []byte, name, value string) []byte {
	out = append(append(append(out, name...), ": "...), value...)
	return append(out, "\r\n"...)
}
