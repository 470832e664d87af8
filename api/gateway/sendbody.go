package gateway

import (
	"io"
	"net/http"
)

// A BodySender is a ResponseWriter of a server that sends an answer's
// body after the handler has returned, reading it from a reader
// (api/fastedge, over fasthttp's Response.SetBodyStream). The lean path
// (forward) hands it the upstream's body instead of copying it, so the
// handler returns before the body is sent and a streamed answer (SSE,
// chunked) still reaches the client as it arrives.
type BodySender interface {
	// SendBody writes the status and headers set so far and has the
	// server send body: size bytes, or until EOF when size is -1
	// (chunked, each read sent as it comes). The server calls body.Close
	// exactly once, after the last read or when sending failed; an error
	// from Read means the answer is cut short and the connection must
	// close. Trailers announced in the Trailer header are in the
	// header map once Read has returned io.EOF.
	SendBody(status int, body io.ReadCloser, size int64)
}

// sentBody is an upstream answer's body handed to a BodySender. It counts
// the bytes for the record, and its Close returns the upstream connection
// (or closes it when the answer was not read to the end) and records the
// request. It lives in the request's pooled proxyExchange.
type sentBody struct {
	p        *proxy
	ex       *proxyExchange
	r        *http.Request
	resp     *http.Response
	pc       *upstreamConn
	complete bool
}

// sendBody hands resp's body to bs. A streamed answer stops counting
// against max_conns_per_host at once, as forward does.
func (p *proxy) sendBody(ex *proxyExchange, w *responseRecorder, bs BodySender, r *http.Request, resp *http.Response, pc *upstreamConn, stream bool) {
	if stream {
		p.upstream.release(pc)
	}
	if w.status < http.StatusOK {
		w.status = resp.StatusCode
	}
	// A body known to be empty (HEAD, 204, 304) is complete before a
	// server that skips it reads anything.
	ex.body = sentBody{p: p, ex: ex, r: r, resp: resp, pc: pc, complete: resp.Body == http.NoBody}
	size := resp.ContentLength
	if stream {
		size = -1
	}
	bs.SendBody(resp.StatusCode, &ex.body, size)
}

func (b *sentBody) Read(buf []byte) (int, error) {
	n, err := b.resp.Body.Read(buf)
	b.ex.w.bytes += int64(n)
	if err == io.EOF {
		b.complete = true
		h := b.ex.w.Header()
		for k, vv := range b.resp.Trailer {
			h[k] = vv
		}
	}
	return n, err
}

// Close ends the exchange: it is called once, by the server, when the body
// was sent or could not be.
func (b *sentBody) Close() error {
	p, ex, pc := b.p, b.ex, b.pc
	if b.complete {
		b.resp.Body.Close()
	}
	if b.complete && !b.resp.Close {
		p.upstream.put(pc)
	} else {
		p.upstream.discard(pc)
	}
	r := b.r
	ex.body = sentBody{}
	p.done(ex, r, ex.start, &ex.d, ex.path)
	return nil
}
