package gateway

import "net/http"

// What of a client's request never reaches the upstream, whatever the
// route and the decision. The common request has none of it, and
// scrubbing it allocates nothing.

// scrubHeaders removes from h every header whose name starts with
// X-Apiwarden in any case, with '_' read as '-': apiwarden sets these, and
// CGI and WSGI upstreams read X_Apiwarden_Owner as HTTP_X_APIWARDEN_OWNER,
// the very name of the one apiwarden sets.
func scrubHeaders(h http.Header) {
	for name := range h {
		if apiwardenHeader(name) {
			delete(h, name)
		}
	}
}

// apiwardenHeader reports whether a header name reads as one of
// apiwarden's: it starts with "x-apiwarden" in any case, '_' for '-'.
func apiwardenHeader(name string) bool {
	const prefix = "x-apiwarden"
	if len(name) <= len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
