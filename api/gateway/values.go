package gateway

import (
	"net/http"
	"unsafe"
)

// headerValues holds the values of the headers the gateway sets on one
// request's header maps (rate-limit, identity, forwarded, request id) in
// one allocation: the one-value slices the maps' entries are, and the
// bytes of the values it formats. A request's maps refer into it, which
// keeps it alive as long as they do; nothing in it is written twice, so
// the strings it hands out never change while it serves one request. One
// goroutine fills it. The lean proxy's is part of its pooled ProxyCall,
// reused by the next request once the call ends: the maps let go of it
// first (DecideProxy).
type headerValues struct {
	vals [maxHeaderValues]string
	n    int
	buf  [headerValueBytes]byte
	used int
}

const (
	// maxHeaderValues is every header one request is given: six
	// rate-limit headers, four identity ones, three X-Forwarded-* and
	// X-Request-Id on the proxy; set allocates past it.
	maxHeaderValues = 14
	// headerValueBytes holds the formatted values of a request with three
	// buckets and an X-Forwarded-For chain of a few hops (the whole
	// struct is then 512 bytes, an allocation size class); longer values
	// are allocated apart.
	headerValueBytes = 256
)

// set sets the header name (canonical) of h to the one value v.
func (hv *headerValues) set(h http.Header, name, v string) {
	if hv.n == len(hv.vals) {
		h[name] = []string{v}
		return
	}
	hv.vals[hv.n] = v
	h[name] = hv.vals[hv.n : hv.n+1 : hv.n+1]
	hv.n++
}

// room is the unused part of the byte buffer, for a value to be appended
// to and then taken with value.
func (hv *headerValues) room() []byte {
	return hv.buf[hv.used:hv.used:len(hv.buf)]
}

// value is b, which must have been appended to room() since the last
// value, as a string: a view of the buffer, or a copy when b outgrew the
// room (append moved it). The buffer's bytes under a view are never
// written again.
func (hv *headerValues) value(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if hv.used+len(b) > len(hv.buf) {
		return string(b)
	}
	hv.used += len(b)
	return unsafe.String(unsafe.SliceData(b), len(b))
}
