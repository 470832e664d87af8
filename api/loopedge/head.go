package loopedge

import (
	"bytes"
	"errors"

	"github.com/apiwarden/apiwarden/api/fastedge"
	"github.com/apiwarden/apiwarden/api/gateway"
)

// The request heads the loop serves itself are the plain shape only, and
// the parser here is strict about it: a request line "METHOD SP target SP
// HTTP/1.1 CRLF" with a token method and an origin-form target of visible
// ASCII; header lines "token ':' OWS value OWS CRLF" whose values hold no
// control byte but tab; exactly one Host; at most one Content-Length, of
// digits, up to gateway.MaxLeanBody; no Transfer-Encoding, Expect or
// Upgrade; no obsolete line folding; no bare LF. Every other head is not
// the loop's (errNotLean): smuggling defences and the rarer shapes of
// HTTP/1.x stay with the servers that handle them today.

// Errors of a head the loop does not serve.
var (
	// errNotLean is a request head of another shape than the plain one
	// that does not parse as the plain one would.
	errNotLean = errors.New("loopedge: request head not of the plain shape")
	// errUnsupported is a request head that parses but asks for what the
	// loop does not do: another HTTP version, a target not in origin
	// form, a Transfer-Encoding, Expect or Upgrade, a body over
	// gateway.MaxLeanBody.
	errUnsupported = errors.New("loopedge: request not served on the event loop")
	// errHeadTooLarge is a head that did not end within the header limit.
	errHeadTooLarge = errors.New("loopedge: request head larger than the header limit")
)

// field is one header line of a head: views of the head's bytes.
type field struct{ name, value []byte }

// requestHead is a parsed request head, its slices views of the bytes
// parsed (names made canonical in place).
type requestHead struct {
	method, target, host []byte
	fields               []field // every header line, Host included, in order
	contentLength        int64   // 0 without a Content-Length
	hasLength            bool    // the client sent a Content-Length
	closeAfter           bool    // Connection: close
}

// headEnd returns the length of the head at the start of buf, its blank
// line included, or 0 while it is incomplete; errHeadTooLarge when limit
// bytes hold no end.
func headEnd(buf []byte, limit int) (int, error) {
	search := buf[:min(len(buf), limit)]
	if i := bytes.Index(search, []byte("\r\n\r\n")); i >= 0 {
		return i + 4, nil
	}
	if len(buf) >= limit {
		return 0, errHeadTooLarge
	}
	return 0, nil
}

// parseHead parses a whole head (headEnd's bytes) into h, reusing h's
// field slice, and makes each header name canonical in place, as
// net/http and fasthttp spell them (X-Api-Key). It returns errNotLean for
// any other shape than the plain one, errUnsupported for a plain head
// asking for more than the loop does; h is then partly filled.
func parseHead(head []byte, h *requestHead) error {
	fields := h.fields[:0]
	*h = requestHead{fields: fields}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if err := h.requestLine(line); err != nil {
		return err
	}
	lengths := 0
	for len(rest) > 2 { // the last two bytes are the blank line's CRLF
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		f, ok := headerLine(line)
		if !ok {
			return errNotLean
		}
		switch string(f.name) {
		case "Host":
			if h.host != nil || !hostValue(f.value) {
				return errNotLean
			}
			h.host = f.value
		case "Content-Length":
			n, ok := lengthValue(f.value)
			if lengths++; !ok || lengths > 1 {
				return errNotLean
			}
			if n > gateway.MaxLeanBody {
				return errUnsupported
			}
			h.contentLength, h.hasLength = n, true
		case "Transfer-Encoding", "Expect", "Upgrade":
			return errUnsupported
		case "Connection":
			h.closeAfter = h.closeAfter || hasToken(f.value, "close")
		}
		h.fields = append(h.fields, f)
	}
	if h.host == nil {
		return errNotLean
	}
	return nil
}

// requestLine parses "METHOD SP target SP HTTP/1.1" into h.
func (h *requestHead) requestLine(line []byte) error {
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !fastedge.Token(method) {
		return errNotLean
	}
	target, version, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(target) == 0 {
		return errNotLean
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return errNotLean
		}
	}
	switch {
	case len(version) != 8 || !bytes.HasPrefix(version, []byte("HTTP/1.")):
		return errNotLean
	case version[7] != '1' || target[0] != '/':
		return errUnsupported
	}
	h.method, h.target = method, target
	return nil
}

// headerLine splits "name: value" with a token name, trims the value's
// optional white space and checks it, and makes the name canonical.
func headerLine(line []byte) (field, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !fastedge.Token(line[:colon]) {
		return field{}, false // a folded line starts with white space: no token
	}
	value := trimOWS(line[colon+1:])
	if !fastedge.FieldValue(value) {
		return field{}, false
	}
	name := line[:colon]
	canonical(name)
	return field{name: name, value: value}, true
}

// canonical rewrites a token header name in place as
// textproto.CanonicalMIMEHeaderKey spells it: the first letter and each
// letter after a hyphen upper case, the others lower.
func canonical(name []byte) {
	upper := true
	for i, c := range name {
		switch {
		case upper && 'a' <= c && c <= 'z':
			name[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			name[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// lengthValue parses a Content-Length of digits alone, short enough not
// to overflow.
func lengthValue(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hostValue accepts a non-empty Host of the bytes a host name, an IP
// literal and a port are made of.
func hostValue(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !fastedge.TokenByte(c) && c != ':' && c != '[' && c != ']' {
			return false
		}
	}
	return true
}

// hasToken reports whether a comma-separated header value lists tok,
// ignoring case and white space.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var item []byte
		item, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(trimOWS(item), []byte(tok)) {
			return true
		}
	}
	return false
}
