package loopedge

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/apiwarden/apiwarden/api/fastedge"
	"github.com/apiwarden/apiwarden/api/gateway"
)

// Errors of an upstream answer or connection, for the gateway's answer
// (gateway.ProxyCall.Failed answers each 502).
var (
	// errBadAnswer is an answer head that does not parse, or a framing
	// the loop does not relay (a transfer coding but chunked).
	errBadAnswer = errors.New("loopedge: upstream answer the event-loop edge cannot relay")
	// errUnaskedUpgrade is a 101 nobody asked for, which the gateway
	// answers as the other edges do.
	errUnaskedUpgrade = fmt.Errorf("loopedge: %w", gateway.ErrUnaskedUpgrade)
	// errUpstreamClosed is an upstream connection that closed or failed
	// before its answer was whole.
	errUpstreamClosed = errors.New("loopedge: upstream connection closed")
	// errUpstreamRefused is an upstream connect that failed.
	errUpstreamRefused = errors.New("loopedge: upstream connect failed")
)

// maxAnswerHead is the largest upstream answer head the loop reads.
const maxAnswerHead = 64 << 10

// answerHead is a parsed upstream answer head, its slices views of the
// upstream's read buffer until the head is relayed.
type answerHead struct {
	status        int
	fields        []field
	contentLength int64
	hasLength     bool
	chunked       bool // Transfer-Encoding: chunked (chunked.go)
	untilClose    bool // neither: the body ends with the upstream's connection (chunked.go)
	closeAfter    bool // Connection: close, HTTP/1.0, or untilClose
	// trailers are the trailer names announced to the client, comma
	// separated (announceTrailers): a chunked answer's trailer fields of
	// those names are relayed, the others dropped.
	trailers []byte
}

// parseAnswer parses an upstream answer head (headEnd's bytes) into a,
// reusing a's field slice, names made canonical in place; errBadAnswer
// for a head the loop does not relay, errUnaskedUpgrade for a 101. isHead says the request was HEAD:
// the answer then has no body whatever its headers say.
func parseAnswer(head []byte, isHead bool, a *answerHead) error {
	*a = answerHead{fields: a.fields[:0], trailers: a.trailers[:0]}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return errBadAnswer
	}
	a.closeAfter = line[7] == '0'
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errBadAnswer
		}
		a.status = a.status*10 + int(c-'0')
	}
	switch {
	case a.status == 101:
		return errUnaskedUpgrade
	case a.status < 100:
		return errBadAnswer
	}
	chunked := false
	for len(rest) > 2 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		f, ok := headerLine(line)
		if !ok {
			return errBadAnswer
		}
		switch string(f.name) {
		case "Content-Length":
			n, ok := lengthValue(f.value)
			if !ok || a.hasLength && n != a.contentLength {
				return errBadAnswer
			}
			a.contentLength, a.hasLength = n, true
		case "Transfer-Encoding":
			if chunked || !bytes.EqualFold(f.value, []byte("chunked")) {
				return errBadAnswer // another coding: not relayed
			}
			chunked = true
		case "Connection":
			a.closeAfter = a.closeAfter || hasToken(f.value, "close")
		}
		a.fields = append(a.fields, f)
	}
	switch {
	case a.interim():
		return nil // no body; the final head follows
	case isHead || a.status == 204 || a.status == 304:
		return nil
	case chunked:
		// Chunked framing wins over a Content-Length (RFC 9112, 6.3).
		a.chunked, a.hasLength, a.contentLength = true, false, 0
	case !a.hasLength:
		a.untilClose, a.closeAfter = true, true
	}
	return nil
}

// interim says the head is a 1xx answer (101 excepted), which the loop
// drops, as api/fastedge's client does: the final answer follows, under
// the same response_header_timeout.
func (a *answerHead) interim() bool { return a.status < 200 }

// bodyLength is how many body bytes follow the answer's head (of a
// chunked body: none known yet).
func (a *answerHead) bodyLength(isHead bool) int64 {
	if isHead || a.status == 204 || a.status == 304 {
		return 0
	}
	return a.contentLength
}

// announceTrailers adds the names of a Trailer value v the client may
// see to a.trailers: those the gateway forwards in an answer's head
// (gateway.ForwardedResponseHeader), but Content-Length, which frames
// the answer. Names are made canonical in place.
func (a *answerHead) announceTrailers(v []byte, connection []string) {
	for len(v) > 0 {
		var name []byte
		name, v, _ = bytes.Cut(v, []byte(","))
		if name = trimOWS(name); len(name) == 0 || !fastedge.Token(name) {
			continue
		}
		canonical(name)
		if string(name) == "Content-Length" || !gateway.ForwardedResponseHeader(b2s(name), connection) {
			continue
		}
		if len(a.trailers) > 0 {
			a.trailers = append(a.trailers, ", "...)
		}
		a.trailers = append(a.trailers, name...)
	}
}
