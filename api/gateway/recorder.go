package gateway

import (
	"bufio"
	"net"
	"net/http"
)

// responseRecorder notes the status and body size a handler sends. It
// keeps Flush and Hijack working (SSE, WebSocket upgrades) and exposes
// Unwrap for http.ResponseController.
//
// It does not pass a 100 Continue on: net/http sends the client its own
// when the request body is first read, which httputil.ReverseProxy's
// transport does once the upstream sent its 100 (or after
// ExpectContinueTimeout). The transport lets the body go before it
// reports the upstream's 100 to ReverseProxy, which writes it to the
// client, so passing it on raced with net/http's own and now and then
// sent two (TestProxyEdgesOneContinue in api). Other 1xx (103 Early
// Hints) pass.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rr *responseRecorder) reset(w http.ResponseWriter) {
	rr.ResponseWriter, rr.status, rr.bytes = w, 0, 0
}

func (rr *responseRecorder) WriteHeader(status int) {
	if status == http.StatusContinue {
		return
	}
	if rr.status < http.StatusOK { // an informational 1xx is not the final status (101 is)
		rr.status = status
	}
	rr.ResponseWriter.WriteHeader(status)
}

func (rr *responseRecorder) Write(b []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	n, err := rr.ResponseWriter.Write(b)
	rr.bytes += int64(n)
	return n, err
}

func (rr *responseRecorder) Flush() {
	if f, ok := rr.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rr *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(rr.ResponseWriter).Hijack()
}

func (rr *responseRecorder) Unwrap() http.ResponseWriter { return rr.ResponseWriter }
