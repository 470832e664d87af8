package loopedge

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// progress moves the pair's requests and answers on as far as the
// buffers allow, one request at a time: it drops what is left of a
// refused request's body, takes the next request head once it is whole,
// forwards the request's body, relays the answer's head and body, and
// ends the call when the answer is whole.
func (l *loop) progress(p *pair) {
	ex := &p.ex
	for {
		if p.discard > 0 {
			n := min(p.discard, int64(len(p.client.in)))
			consume(&p.client.in, int(n))
			if p.discard -= n; p.discard > 0 {
				return
			}
		}
		if !ex.busy {
			if len(p.upstream.in) > 0 { // an answer nobody asked for
				l.upstreamGone(p, nil)
			}
			if p.closing || p.handing || len(p.client.in) == 0 || l.draining.Load() || !l.takeRequest(p) {
				return
			}
			continue
		}
		moveBody(&p.client.in, &p.upstream.out, &ex.bodyLeft)
		if !ex.headDone && !l.relayHead(p) {
			if ex.busy {
				return // the head is not whole yet
			}
			continue // the request was answered by the gateway
		}
		if !l.relayBody(p) {
			if ex.busy {
				return // more is to come
			}
			continue // the answer was cut
		}
		l.finish(p)
	}
}

// takeRequest takes the request head at the start of client.in once it
// is whole and has it decided (decide): false while it is not whole,
// when the request is not the loop's (notLean), or while its decision is
// out (decideOff, when decisions may wait). The head leaves
// client.in only once the loop serves it, so that a hand-off gives the
// fasthttp edge the bytes as the client sent them.
func (l *loop) takeRequest(p *pair) bool {
	if p.deciding {
		return false
	}
	n, err := headEnd(p.client.in, l.s.headLimit)
	if err != nil {
		l.notLean(p, http.StatusRequestHeaderFieldsTooLarge)
		return false
	}
	if n == 0 {
		return false
	}
	ex := &p.ex
	ex.head = append(ex.head[:0], p.client.in[:n]...)
	switch err := parseHead(ex.head, &ex.req); {
	case errors.Is(err, errUnsupported):
		l.notLean(p, http.StatusNotImplemented)
		return false
	case err != nil:
		l.notLean(p, http.StatusBadRequest)
		return false
	}
	l.inbound(p)
	p.since, p.fresh = l.now, false
	if l.s.mayWait {
		l.decideOff(p)
		return false
	}
	if !l.decide(p) {
		l.notLean(p, http.StatusBadRequest)
		return false
	}
	consume(&p.client.in, n)
	return true
}

// notLean hands the pair's client connection to the fasthttp edge once
// what is queued for it is written (giveAway), or, without one, answers
// status and closes it.
func (l *loop) notLean(p *pair, status int) {
	if l.s.fast == nil {
		l.refuseShape(p, status)
		return
	}
	p.handing = true
}

// refuseShape answers a request the loop does not serve with status and
// closes the pair once that is written.
func (l *loop) refuseShape(p *pair, status int) {
	body := http.StatusText(status) + "\n"
	out := append(p.client.out, "HTTP/1.1 "...)
	out = appendStatus(out, status)
	out = append(out, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"...)
	out = l.appendDate(out)
	out = strconv.AppendInt(append(out, "Content-Length: "...), int64(len(body)), 10)
	p.client.out = append(append(out, "\r\n\r\n"...), body...)
	p.closing = true
}

// inbound gathers what the gateway reads of the pair's request, as
// api/fastedge's proxyInbound does, its strings views of the request's
// head.
func (l *loop) inbound(p *pair) {
	ex := &p.ex
	r, in := &ex.req, &ex.in
	forwardedFor := in.Header.ForwardedFor[:0]
	*in = gateway.ProxyInbound{}
	in.Header.ForwardedFor = forwardedFor
	target := b2s(r.target)
	in.Method, in.Target, in.Peer, in.Host = b2s(r.method), target, p.peer, b2s(r.host)
	in.Path, in.RawQuery, _ = strings.Cut(target, "?")
	in.ContentLength = r.contentLength
	country := l.gw.CountryHeader()
	n := len(target)
	for _, f := range r.fields {
		name, value := b2s(f.name), b2s(f.value)
		if name == "Host" {
			continue
		}
		n += in.AddHeader(name, value, country)
	}
	in.HeaderBytes = n
}

// relayHead parses the upstream's answer head once it is whole and
// queues the client's (appendAnswerHead): false while it is not whole,
// or when the answer cannot be relayed and the gateway answered instead.
func (l *loop) relayHead(p *pair) bool {
	ex := &p.ex
	isHead := string(ex.req.method) == http.MethodHead
	var n int
	for {
		var err error
		n, err = headEnd(p.upstream.in, maxAnswerHead)
		switch {
		case err != nil:
			err = errBadAnswer
		case n == 0:
			return false
		default:
			err = parseAnswer(p.upstream.in[:n], isHead, &ex.answer)
		}
		if err != nil {
			l.upstreamGone(p, err)
			return false
		}
		if !ex.answer.interim() {
			break
		}
		consume(&p.upstream.in, n)
	}
	ex.took = time.Since(ex.sent)
	l.streaming(p) // while the answer's fields are views of upstream.in
	p.client.out = l.appendAnswerHead(p.client.out, ex)
	consume(&p.upstream.in, n)
	ex.left, ex.headDone, ex.chunks = ex.answer.bodyLength(isHead), true, chunkSize
	return true
}

// relayBody moves the answer's body as far as it is there: true once it
// is whole (a body framed by the close: never, endByClose ends it). A
// chunked body it cannot read is cut (fail).
func (l *loop) relayBody(p *pair) bool {
	ex := &p.ex
	if ex.answer.untilClose {
		l.relayUntilClose(p)
		return false
	}
	if !ex.answer.chunked {
		ex.bytes += moveBody(&p.upstream.in, &p.client.out, &ex.left)
		return ex.left == 0
	}
	done, err := l.relayChunks(p)
	if err != nil {
		l.upstreamGone(p, err)
		return false
	}
	return done
}

// finish ends the call of an answer relayed whole and lets its upstream
// connection go (letGo): one left mid-request (an answer before the
// whole body), asked to close or with bytes past the answer is closed.
func (l *loop) finish(p *pair) {
	ex := &p.ex
	ex.call.Finish(ex.answer.status, ex.bytes, ex.took, ex.cache)
	ex.call, ex.busy = nil, false
	p.since = l.now
	reusable := ex.bodyLeft == 0 && !ex.answer.closeAfter && len(p.upstream.in) == 0
	p.discard, ex.bodyLeft = ex.bodyLeft, 0
	l.letGo(p, reusable)
	if ex.req.closeAfter {
		p.closing = true
	}
}

// endByClose relays the rest of an answer framed by the upstream's
// close and its last chunk, when the upstream's connection closed with
// such an answer in flight: true when it did, and the answer is whole.
func (l *loop) endByClose(p *pair) bool {
	ex := &p.ex
	if !ex.busy || !ex.headDone || !ex.answer.untilClose {
		return false
	}
	l.relayUntilClose(p)
	p.client.out = append(p.client.out, "0\r\n\r\n"...)
	return true
}

// fail ends the call in flight after an upstream failure (cause): the
// gateway answers it (502) when its answer has not started; else the
// answer is cut, recorded with what was sent, and the pair closes.
func (l *loop) fail(p *pair, cause error) {
	ex := &p.ex
	ex.busy = false
	l.letGo(p, false)
	if ex.headDone {
		ex.call.Finish(ex.answer.status, ex.bytes, ex.took, ex.cache)
		ex.call, p.closing = nil, true
		return
	}
	l.failed(p, cause)
	p.discard, ex.bodyLeft = ex.bodyLeft, 0
	if ex.req.closeAfter {
		p.closing = true
	}
}

// abandon ends the call in flight of a client that went away.
func (l *loop) abandon(p *pair) {
	ex := &p.ex
	ex.busy = false
	l.letGo(p, false)
	if ex.headDone {
		ex.call.Finish(ex.answer.status, ex.bytes, ex.took, ex.cache)
		ex.call = nil
		return
	}
	l.failed(p, context.Canceled)
}

// appendStatus appends an answer's status code and reason and the line's
// end.
func appendStatus(out []byte, status int) []byte {
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(append(out, ' '), http.StatusText(status)...)
	return append(out, "\r\n"...)
}

// appendDate appends a Date header of the loop's time, formatted once a
// second.
func (l *loop) appendDate(out []byte) []byte {
	if sec := l.now.Unix(); sec != l.dateSec || l.date == nil {
		l.date = l.now.UTC().AppendFormat(l.date[:0], http.TimeFormat)
		l.dateSec = sec
	}
	out = append(append(out, "Date: "...), l.date...)
	return append(out, "\r\n"...)
}

// b2s is b as a string without a copy: valid while b's bytes are.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
