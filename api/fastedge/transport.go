package fastedge

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// leanTransport is the upstream client's fasthttp.RoundTripper. It differs
// from fasthttp's own in one thing: it decides whether to stream the
// answer's body after reading the head, not before. fasthttp's transport,
// with StreamResponseBody, streams every body, and a stream costs three
// closures, a wrapper with a mutex and a sync.Once, and a lock a Read;
// here an answer of known length up to maxWholeAnswer that is not an
// event stream is read whole into the response and its connection goes
// back to the pool before RoundTrip returns. Every other body (larger,
// chunked, read to the close, text/event-stream) streams through an
// upstreamStream, which gives the connection back at its Close.
//
// The head is read by fasthttp (Response.ReadLimitBody with SkipBody:
// interim heads, limits and errors as fasthttp reads them), and the
// connection, reader and writer come from the HostClient's pools, so the
// HostClient's retries, idle connections and CloseIdleConnections work as
// with its own transport. The client sets no read or write timeout of its
// own: headerConn bounds the head, and is told here when fasthttp has
// read the final one, so none is set here.
//
// Safe for concurrent use.
type leanTransport struct {
	streams sync.Pool // of *upstreamStream
}

func newLeanTransport() *leanTransport {
	return &leanTransport{streams: sync.Pool{New: func() any { return new(upstreamStream) }}}
}

// RoundTrip sends req on a connection of hc and reads the answer into
// resp. retry says, as fasthttp's transport does, whether the request may
// be sent again: when it failed before the answer's head was read.
func (t *leanTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	cc, err := hc.AcquireConn(0, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	bw := hc.AcquireWriter(conn)
	err = writeRequest(bw, req)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return true, err
	}
	br := hc.AcquireReader(conn)
	resp.SkipBody = true // the head only: the body is read below
	err = resp.ReadLimitBody(br, 0)
	resp.SkipBody = false
	if err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return true, err
	}
	if c, ok := conn.(*headerConn); ok {
		c.headRead() // fasthttp has the final head: the body reads untimed
	}
	reuse := !req.ConnectionClose() && !resp.ConnectionClose() && resp.StatusCode() != fasthttp.StatusSwitchingProtocols
	h := &resp.Header
	switch {
	case req.Header.IsHead() || noBody(resp.StatusCode()):
		resp.SkipBody = true
	case wholeAnswer(h):
		reuse = readWhole(resp, br) && reuse
	default:
		// The connection's type is fasthttp's own: a closure holds it.
		// Only a streamed answer makes one.
		release := func(reuse bool) {
			if !reuse {
				_ = conn.Close() // first, as fasthttp does: nothing reads it again
			}
			hc.ReleaseReader(br)
			if reuse {
				hc.ReleaseConn(cc)
			} else {
				hc.CloseConn(cc)
			}
		}
		t.streams.Get().(*upstreamStream).start(t, br, resp, reuse, release)
		return false, nil
	}
	hc.ReleaseReader(br)
	if reuse {
		hc.ReleaseConn(cc)
	} else {
		hc.CloseConn(cc)
	}
	return false, nil
}

// writeRequest writes req to bw as fasthttp's Request.Write does, byte
// for byte, for the request upstreamRequest builds: a head and a body of
// bytes. The head is encoded straight into bw's free buffer (the
// HostClient's pooled 4 KiB writer), so a head and a small body leave in
// one write at the Flush, as before; what changes is the depth: this
// frame and RequestHeader.AppendBytes, not Request.Write's 496 bytes and
// RequestHeader.Write's above it, so the proxied request fits in a 4 KiB
// worker stack (docs/BENCHMARKS.md, "Stacks per connection on the
// fasthttp proxy"). Any other request (a body stream, trailers, which go
// chunked, userinfo in the target, CONNECT, raw special headers) is
// written by Request.Write. Like Request.Write, it sets Host, the target
// and Content-Length in req's head, and needs req.URI() parsed, as
// HostClient does before RoundTrip.
//
// Request.Write also sends a multipart form or post arguments set
// through fasthttp's form API when the body is empty; upstreamRequest
// sets neither, and neither can be seen here without parsing the body.
//
// The gateway's headers upstreamRequest leaves in req (gatewayFields)
// are appended to the head's end here, after req's own; a request
// Request.Write writes has them added to its header first, once.
func writeRequest(bw *bufio.Writer, req *fasthttp.Request) error {
	up, _ := req.UserValue(gatewayFields{}).(*gateway.Fields)
	body, hasBody, plain := frameRequest(req)
	if !plain {
		if up != nil {
			addHeaders(&req.Header, up)
			req.RemoveUserValue(gatewayFields{}) // a retry writes them once
		}
		return req.Write(bw)
	}
	head := req.Header.AppendBytes(bw.AvailableBuffer())
	if up != nil {
		head = append(up.AppendLines(head[:len(head)-2]), '\r', '\n') // before the empty line
	}
	if _, err := bw.Write(head); err != nil || !hasBody {
		return err
	}
	_, err := bw.Write(body)
	return err
}

// gatewayFields is the user value key under which upstreamRequest leaves
// the gateway's headers for the upstream (a *gateway.Fields) in the
// request it builds.
type gatewayFields struct{}

// frameRequest sets req's Host, target and Content-Length as
// Request.Write does before it encodes the head, and returns the body and
// whether it is sent; plain says req is one writeRequest encodes itself,
// and nothing was set when it is not. A frame of its own, beside the
// head's encoding, not above it (see writeRequest).
//
//go:noinline
func frameRequest(req *fasthttp.Request) (body []byte, hasBody, plain bool) {
	h := &req.Header
	uri := req.URI()
	if req.IsBodyStream() || hasTrailers(h) || len(uri.Username()) > 0 || h.IsConnect() || !specialHeaders(h) {
		return nil, false, false
	}
	switch {
	case len(h.Host()) == 0:
		if len(uri.Host()) == 0 {
			return nil, false, false // Request.Write's error: no host
		}
		h.SetHostBytes(uri.Host())
	case !req.UseHostHeader:
		h.SetHostBytes(uri.Host())
	}
	h.SetRequestURIBytes(uri.RequestURI())
	body = req.Body()
	hasBody = len(body) > 0 || !h.IsGet() && !h.IsHead()
	if hasBody || h.ContentLength() > 0 || len(h.Peek(fasthttp.HeaderTransferEncoding)) > 0 {
		h.SetContentLength(len(body))
	}
	return body, hasBody, true
}

// hasTrailers says whether h announces trailer fields.
func hasTrailers(h *fasthttp.RequestHeader) bool {
	for range h.Trailers() {
		return true
	}
	return false
}

// specialHeaders says whether fasthttp writes h's special headers (Host,
// Content-Type, Content-Length…) itself, as it does unless
// RequestHeader.DisableSpecialHeader was called. fasthttp has no getter:
// the setting is read by setting it and put back.
func specialHeaders(h *fasthttp.RequestHeader) bool {
	if h.EnableSpecialHeader() {
		h.DisableSpecialHeader()
		return false
	}
	return true
}

// noBody says whether an answer of this status has no body whatever its
// head says (RFC 9112 section 6.3: 1xx, 204, 304), as fasthttp reads it.
func noBody(status int) bool {
	return status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified
}

// wholeAnswer says whether the answer's body is read whole before it is
// sent: an empty one, or one of known length up to maxWholeAnswer that
// is not an event stream.
func wholeAnswer(h *fasthttp.ResponseHeader) bool {
	n := h.ContentLength()
	return n == 0 || n > 0 && n <= maxWholeAnswer && !eventStream(h)
}

// eventStream says whether the answer is a server-sent event stream,
// whose events must reach the client as they come.
func eventStream(h *fasthttp.ResponseHeader) bool {
	return strings.HasPrefix(b2s(h.ContentType()), "text/event-stream")
}

// readWhole reads resp's body of known length from br into resp and says
// whether it got all of it. When the upstream fails mid-body, what came is
// put in front of the failure as resp's body stream: the answer is then
// sent, and fails, as a streamed one does, and its connection is closed.
func readWhole(resp *fasthttp.Response, br *bufio.Reader) bool {
	size := resp.Header.ContentLength()
	resp.StreamBody = false
	if err := resp.ReadBody(br, 0); err != nil {
		came := bytes.Clone(resp.Body())
		resp.SetBodyStream(io.MultiReader(bytes.NewReader(came), errReader{err}), size)
		return false
	}
	return true
}

// errReader is a reader that fails with its error.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// upstreamStream is an answer's body streamed from its upstream
// connection: fasthttp's own body stream of the answer (framing, chunks,
// trailers), read from a Response of its own that holds a copy of the
// answer's head, since fasthttp's stream reads the trailers into the
// Response it was made for. Its Close gives the connection back to the
// pool when the body was read to its end, and closes it otherwise. Read
// and Close are called from one goroutine at a time (fasthttp's server
// reads the body it sends and then closes it on the connection's
// goroutine).
type upstreamStream struct {
	t       *leanTransport
	body    fasthttp.Response // its head a copy of the answer's
	r       io.Reader
	release func(reuse bool) // gives the connection back, or closes it
	reuse   bool             // the connection may go back to the pool
	done    bool             // the body was read to its end
}

// start makes s the body stream of resp, read from br.
func (s *upstreamStream) start(t *leanTransport, br *bufio.Reader, resp *fasthttp.Response, reuse bool, release func(bool)) {
	s.t, s.reuse, s.release = t, reuse, release
	resp.Header.CopyTo(&s.body.Header)
	s.body.StreamBody = true
	_ = s.body.ReadBody(br, 0) // with StreamBody, it only makes the stream
	s.r = s.body.BodyStream()
	resp.SetBodyStream(s, resp.Header.ContentLength())
}

// Read reads the body.
func (s *upstreamStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.done = true
	}
	return n, err
}

// Trailer is the value of the trailer field name, once the body was read
// to its end.
func (s *upstreamStream) Trailer(name string) []byte { return s.body.Header.Peek(name) }

// Close ends the stream, gives its connection back (see upstreamStream)
// and returns s to its pool.
func (s *upstreamStream) Close() error {
	reuse := s.reuse && s.done && !s.body.Header.ConnectionClose()
	s.body.CloseBodyStream() //nolint:errcheck // fasthttp's stream only releases itself
	s.release(reuse)
	s.body.Reset()
	s.r, s.release, s.reuse, s.done = nil, nil, false, false
	s.t.streams.Put(s)
	return nil
}
