package gateway

import (
	"net/http"
	"strings"
)

// What of a client's request never reaches the upstream, whatever the
// route and the decision. The common request has none of it, and
// scrubbing it allocates nothing.

// scrubHeaders removes from h, in one pass over it:
//   - every header whose name starts with X-Apiwarden in any case, with
//     '_' read as '-': apiwarden sets these, and CGI and WSGI upstreams
//     read X_Apiwarden_Owner as HTTP_X_APIWARDEN_OWNER, the very name of
//     the one apiwarden sets;
//   - Upgrade and HTTP2-Settings unless the request is a WebSocket
//     handshake: after a 101 the upstream would read every later request
//     on the connection directly, undecided and unrecorded (an h2c
//     upgrade is a tunnel past the gateway).
func scrubHeaders(h http.Header) {
	for name := range h {
		if apiwardenHeader(name) {
			delete(h, name)
		}
	}
	if _, ok := h["Upgrade"]; ok && !websocketUpgrade(h) {
		delete(h, "Upgrade")
		delete(h, "Http2-Settings")
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

// websocketUpgrade reports whether h asks for a WebSocket upgrade and
// nothing else: one Upgrade value, "websocket", named by Connection.
func websocketUpgrade(h http.Header) bool {
	up := h["Upgrade"]
	return len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") && listed(h["Connection"], "Upgrade")
}
