package fastedge

import (
	"errors"
	"net"
	"net/http"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/httpapi"
)

// parseError answers a request fasthttp could not read, with the error
// body; fasthttp closes the connection after it, as net/http does. Headers
// over the read buffer are 431 and a body over its cap (bodyCap) 413, as
// the gateway answers them; a Transfer-Encoding other than chunked is
// 501, as on net/http; a read that timed out is 408 and anything else the
// parser refused (a malformed request line or header, Content-Length
// values that differ) is 400.
func (s *Server) parseError(ctx *fasthttp.RequestCtx, err error) {
	e := httpapi.Errorf(httpapi.CodeInvalidRequest, "the request could not be read as HTTP/1.1")
	status := http.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small):
		e = httpapi.Errorf(httpapi.CodeHeadersTooLarge, "request headers are larger than the server reads")
		status = http.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrUnsupportedTransferEncoding):
		// net/http's status: a framing the server does not implement.
		e = httpapi.Errorf(httpapi.CodeInvalidRequest, "send the body with Content-Length or Transfer-Encoding: chunked alone")
		status = http.StatusNotImplemented
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = httpapi.Errorf(httpapi.CodePayloadTooLarge, "request body is larger than %d bytes", bodyCap(ctx.Request.Header.RequestURI()))
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &netErr) && netErr.Timeout():
		e = httpapi.Errorf(httpapi.CodeInvalidRequest, "the request did not arrive in time")
		status = http.StatusRequestTimeout
	}
	s.log.Debug("unreadable request", "err", err)
	h := make(http.Header, 4)
	rid := s.gw.RequestIDs().Next()
	h["X-Request-Id"] = []string{rid}
	body := httpapi.ErrorAnswer(h, e, status, rid)
	copyHeader(&ctx.Response.Header, h)
	ctx.SetStatusCode(status)
	ctx.SetBody(body)
}
