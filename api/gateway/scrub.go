package gateway

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/keys"
)

// What of a client's request never reaches the upstream, whatever the
// route and the decision: headers that read as apiwarden's own, apiwarden
// keys wherever a header or the query carries one, the dashboard's
// session cookie, and an Upgrade to anything but WebSocket. The common
// request carries none of these but its key header, and scrubbing it
// allocates nothing.

// scrubHeaders removes from h, in one pass over it:
//   - every header whose name starts with X-Apiwarden in any case, with
//     '_' read as '-': CGI and WSGI upstreams read X_Apiwarden_Owner as
//     HTTP_X_APIWARDEN_OWNER, the header apiwarden sets;
//   - every value that is a key (see carriesKey) or has one inside it
//     (keys.ContainsKey), in any header;
//   - from Cookie, the dashboard's session cookie and cookies whose value
//     is a key; from Referer, key parameters of its query;
//   - Upgrade and HTTP2-Settings unless the request is a WebSocket
//     handshake: after a 101 the upstream would read every later request
//     on the connection directly, undecided and unrecorded.
func scrubHeaders(h http.Header) {
	for name, values := range h {
		if apiwardenHeader(name) {
			delete(h, name)
			continue
		}
		scrubValues(h, name, values, valueScrubber(name))
	}
	if _, ok := h["Upgrade"]; ok && !websocketUpgrade(h) {
		delete(h, "Upgrade")
		delete(h, "Http2-Settings")
	}
}

// valueScrubber is the scrubber of one header's values: the Cookie and
// Referer rules for those two headers (names in any case), dropKey for
// the others.
func valueScrubber(name string) func(string) (string, bool) {
	switch {
	case strings.EqualFold(name, "Cookie"):
		return scrubCookies
	case strings.EqualFold(name, "Referer"):
		return scrubReferer
	}
	return dropKey
}

// ScrubHeaderValue applies scrubHeaders' rules to one value of a request
// header, for a server that does not keep headers in an http.Header
// (api/fastedge): keep false drops the value (a header named as
// apiwarden's, a key, a value left empty), changed says clean differs
// from value. It allocates nothing when nothing changes. Upgrade is not
// its concern: callers forward no Upgrade (see Lean). Safe for
// concurrent use.
func ScrubHeaderValue(name, value string) (clean string, keep, changed bool) {
	if apiwardenHeader(name) {
		return "", false, true
	}
	clean, changed = valueScrubber(name)(value)
	return clean, !changed || clean != "", changed
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

// scrubValues sets h[name] to values with each value v replaced by
// scrub(v), dropping those it empties; the header goes when none are
// left. Dropping whole values (a key header) allocates nothing.
func scrubValues(h http.Header, name string, values []string, scrub func(string) (string, bool)) {
	var out []string
	changed := false
	for i, v := range values {
		clean, c := scrub(v)
		if c && !changed {
			// The values before i stay; the capacity limit makes a later
			// append copy them rather than write into values.
			out, changed = values[:i:i], true
		}
		switch {
		case !changed:
		case !c:
			out = append(out, v)
		case clean != "":
			out = append(out, clean)
		}
	}
	switch {
	case !changed:
	case len(out) == 0:
		delete(h, name)
	default:
		h[name] = out
	}
}

// dropKey empties a header value that carries a key, as the whole value
// or anywhere inside it.
func dropKey(v string) (string, bool) {
	if carriesKey(v) || keys.ContainsKey(v) {
		return "", true
	}
	return v, false
}

// carriesKey reports whether a header value is a key: the whole value,
// the credentials after an auth scheme ("Bearer <key>", "Token <key>"),
// or the user or password of Basic credentials.
func carriesKey(v string) bool {
	v = strings.TrimSpace(v)
	if keys.LooksLikeKey(v) {
		return true
	}
	scheme, credentials, ok := strings.Cut(v, " ")
	if !ok {
		return false
	}
	credentials = strings.TrimSpace(credentials)
	if strings.EqualFold(scheme, "Basic") {
		return basicCarriesKey(credentials)
	}
	return keys.LooksLikeKey(credentials)
}

// maxBasicCredentials bounds the Basic credentials carriesKey decodes:
// room for a key as user and another as password, base64-encoded.
const maxBasicCredentials = 192

// basicCarriesKey reports whether base64 user:password credentials have
// a key as the user or the password (curl -u key: sends one so).
func basicCarriesKey(credentials string) bool {
	if len(credentials) > maxBasicCredentials {
		return false
	}
	// Fixed arrays keep the decoding off the heap.
	var src [maxBasicCredentials]byte
	var dst [maxBasicCredentials]byte
	n, err := base64.StdEncoding.Decode(dst[:], src[:copy(src[:], credentials)])
	if err != nil {
		return false
	}
	user, password, _ := strings.Cut(string(dst[:n]), ":")
	return keys.LooksLikeKey(user) || keys.LooksLikeKey(password)
}

// scrubCookies removes from a Cookie header value the dashboard's session
// cookie (under either of its names) and any cookie whose value is a key,
// and keeps the others in order. changed is false, and nothing is
// allocated, when there is nothing to remove.
func scrubCookies(v string) (clean string, changed bool) {
	if !anyPart(v, ';', dropCookie) {
		return v, false
	}
	var b strings.Builder
	for rest := v; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, ";")
		if pair = strings.TrimSpace(pair); pair == "" || dropCookie(pair) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(pair)
	}
	return b.String(), true
}

// dropCookie says whether one name=value pair of a Cookie header must not
// reach the upstream. A pair without '=' is all value, as browsers read it.
func dropCookie(pair string) bool {
	if carriesKey(pair) || keys.ContainsKey(pair) {
		return true
	}
	name, value, ok := strings.Cut(pair, "=")
	if !ok {
		return false
	}
	name = strings.TrimSpace(name)
	if name == httpapi.SessionCookie || name == httpapi.SecureSessionCookie {
		return true
	}
	return carriesKey(strings.Trim(strings.TrimSpace(value), `"`))
}

// scrubReferer removes key parameters from the query of a Referer: a
// page opened with ?api_key= names its own URL, key included, in the
// requests it makes; and the whole value when a key is left anywhere
// else in it (the path, a fragment).
func scrubReferer(v string) (string, bool) {
	if carriesKey(v) {
		return "", true
	}
	base, query, ok := strings.Cut(v, "?")
	if !ok {
		return dropKey(v)
	}
	query, fragment, hasFragment := strings.Cut(query, "#")
	query, changed := scrubQuery(query)
	if !changed {
		return dropKey(v)
	}
	if query != "" {
		base += "?" + query
	}
	if hasFragment {
		base += "#" + fragment
	}
	if carriesKey(base) || keys.ContainsKey(base) {
		return "", true
	}
	return base, true
}

// scrubQuery removes from a raw query every api_key parameter (its name
// decoded, in any case) and every parameter whose decoded value is a key,
// and keeps the others as they were, in order. Parameters are split at
// '&' and at ';', which some upstreams also read as a separator. changed
// is false, and nothing is allocated, when there is nothing to remove.
func scrubQuery(rawQuery string) (clean string, changed bool) {
	if rawQuery == "" || !anyPart(rawQuery, 0, dropParam) {
		return rawQuery, false
	}
	var b strings.Builder
	sep := byte(0)
	for rest := rawQuery; ; {
		i := strings.IndexAny(rest, "&;")
		param := rest
		if i >= 0 {
			param = rest[:i]
		}
		if param != "" && !dropParam(param) {
			if b.Len() > 0 {
				b.WriteByte(sep)
			}
			b.WriteString(param)
		}
		if i < 0 {
			break
		}
		sep, rest = rest[i], rest[i+1:]
	}
	return b.String(), true
}

// dropParam says whether one name=value parameter of a query must not
// reach the upstream.
func dropParam(param string) bool {
	name, value, _ := strings.Cut(param, "=")
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	if strings.EqualFold(name, "api_key") {
		return true
	}
	if v, err := url.QueryUnescape(value); err == nil {
		value = v
	}
	return keys.LooksLikeKey(value)
}

// anyPart reports whether drop holds for any part of s split at sep, or
// at '&' and ';' when sep is 0.
func anyPart(s string, sep byte, drop func(string) bool) bool {
	for s != "" {
		var i int
		if sep == 0 {
			i = strings.IndexAny(s, "&;")
		} else {
			i = strings.IndexByte(s, sep)
		}
		part := s
		if i >= 0 {
			part = s[:i]
		}
		if part != "" && drop(part) {
			return true
		}
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
	return false
}

// websocketUpgrade reports whether h asks for a WebSocket upgrade and
// nothing else: one Upgrade value, "websocket", named by Connection.
func websocketUpgrade(h http.Header) bool {
	up := h["Upgrade"]
	return len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") && listed(h["Connection"], "Upgrade")
}
