package loopedge

import (
	"bytes"
	"errors"
)

// Errors of an upstream answer or connection, for the gateway's answer
// (gateway.ProxyCall.Failed answers each 502).
var (
	// errBadAnswer is an answer head that does not parse, or a shape the
	// loop does not relay: an until-close body, a 101.
	errBadAnswer = errors.New("loopedge: upstream answer the event-loop edge cannot relay")
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
	closeAfter    bool // Connection: close, or HTTP/1.0
}

// parseAnswer parses an upstream answer head (headEnd's bytes) into a,
// reusing a's field slice, names made canonical in place; errBadAnswer
// for a head the loop does not relay. isHead says the request was HEAD:
// the answer then has no body whatever its headers say.
func parseAnswer(head []byte, isHead bool, a *answerHead) error {
	fields := a.fields[:0]
	*a = answerHead{fields: fields}
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
	if a.status == 101 || a.status < 100 {
		return errBadAnswer // a protocol switch nobody asked for
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
		return errBadAnswer // until close: not relayed yet
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
