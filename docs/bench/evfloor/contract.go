package main

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// The contract is docs/bench/bareproxy's with -contract: the key headers
// removed, apiwarden's identity and forwarding headers and a request id
// added upstream, the request id and the rate-limit headers added to the
// answer, of the sizes apiwarden sends, deciding and recording nothing.
const (
	tier              = "unlimited"
	keyID             = "key_0Vd74IP9gjlE1XSOPsMX"
	requestIDPrefix   = "q0t4q5bkit-"
	limit, remaining  = 60000000000, 59999999999
	ratelimitPolicy   = `"hour";q=1000000000000;w=3600, "minute";q=60000000000;w=60`
	ratelimitHeadText = `"minute";r=`
)

// requestHeadersSet are the request headers the floor removes: the key's,
// the hop-by-hop Connection, and those it sets itself (as bareproxy's Set
// replaces them). Host, Content-Length and Transfer-Encoding are read
// apart.
var requestHeadersSet = [...]string{
	"X-Api-Key", "Authorization", "Connection",
	"X-Apiwarden-Tier", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Request-Id", "X-Apiwarden-Key-Id",
}

// answerHeadersSet are the answer headers the floor sets, so an upstream's
// own are dropped.
var answerHeadersSet = [...]string{
	"X-Request-Id", "X-Ratelimit-Reset", "Ratelimit-Policy",
	"Ratelimit", "X-Ratelimit-Limit", "X-Ratelimit-Remaining",
}

// Errors of a head the floor refuses; the loop answers each and closes.
var (
	// errBadRequest is a request head that does not parse (400).
	errBadRequest = errors.New("evfloor: malformed request head")
	// errUnsupported is a request the floor does not carry: a
	// Transfer-Encoding body or an Expect header (501).
	errUnsupported = errors.New("evfloor: request not supported (chunked body or Expect)")
	// errBadGateway is an upstream answer the floor cannot relay: no
	// Content-Length, a Transfer-Encoding, a protocol switch (502).
	errBadGateway = errors.New("evfloor: upstream answer not supported")
)

// maxHead is the largest head, request or answer, the floor reads.
const maxHead = 16 << 10

// request is what the floor keeps of a request head it forwarded.
type request struct {
	headLen    int  // bytes of the head, blank line included
	bodyLen    int  // Content-Length
	isHead     bool // HEAD: the answer has no body whatever its headers say
	closeAfter bool // Connection: close, or HTTP/1.0
	isHTTP10   bool
}

// answer is what the floor keeps of an upstream answer head it relayed.
type answer struct {
	headLen    int
	bodyLen    int
	interim    bool // a 1xx other than 101: the final answer follows
	closeAfter bool
}

// headerLines walks the header lines of a head, from the line after the
// first to the blank line.
type headerLines struct{ rest []byte }

// next returns the next header line (without its CRLF) split at its colon,
// the value trimmed; ok is false at the end. A line without a colon is
// returned with a nil name.
func (h *headerLines) next() (line, name, value []byte, ok bool) {
	i := bytes.Index(h.rest, crlf)
	if i <= 0 {
		return nil, nil, nil, false
	}
	line, h.rest = h.rest[:i], h.rest[i+2:]
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return line, nil, nil, true
	}
	return line, line[:colon], bytes.TrimSpace(line[colon+1:]), true
}

var crlf = []byte("\r\n")

// splitHead returns the length of the head at the start of buf (through its
// blank line) and its first line, or 0 while the head is incomplete.
func splitHead(buf []byte) (headLen int, first []byte) {
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, nil
	}
	first = buf[:bytes.Index(buf, crlf)]
	return end + 4, first
}

// rewriteRequest parses the request head at the start of in and, when it is
// complete, appends the upstream's request head to out: the client's lines
// less requestHeadersSet, then the contract's headers with the request id
// id and the client's address peer. req.headLen is 0 while the head is
// incomplete.
func rewriteRequest(out, in, id, peer []byte) (req request, _ []byte, err error) {
	headLen, first := splitHead(in)
	if headLen == 0 {
		if len(in) > maxHead {
			return req, out, errBadRequest
		}
		return req, out, nil
	}
	method, _, ok1 := bytes.Cut(first, []byte(" "))
	sp := bytes.LastIndexByte(first, ' ')
	if !ok1 || sp < 0 || !bytes.HasPrefix(first[sp+1:], []byte("HTTP/1.")) {
		return req, out, errBadRequest
	}
	req.headLen = headLen
	req.isHead = string(method) == "HEAD"
	req.isHTTP10 = string(first[sp+1:]) == "HTTP/1.0"
	req.closeAfter = req.isHTTP10
	// The upstream connection is HTTP/1.1 keep-alive whatever the client speaks.
	out = append(out, first[:sp+1]...)
	out = append(out, "HTTP/1.1\r\n"...)
	var host []byte
	lines := headerLines{rest: in[len(first)+2 : headLen]}
	for line, name, value, ok := lines.next(); ok; line, name, value, ok = lines.next() {
		switch {
		case name == nil:
			return req, out, errBadRequest
		case headerIs(name, "Host"):
			host = value
		case headerIs(name, "Content-Length"):
			if req.bodyLen, ok = parseLength(value); !ok {
				return req, out, errBadRequest
			}
		case headerIs(name, "Transfer-Encoding"), headerIs(name, "Expect"):
			return req, out, errUnsupported
		case headerIs(name, "Connection"):
			if bytes.EqualFold(value, []byte("close")) {
				req.closeAfter = true
			} else if req.isHTTP10 && bytes.EqualFold(value, []byte("keep-alive")) {
				req.closeAfter = false
			}
			continue
		}
		if headerIn(name, requestHeadersSet[:]) {
			continue
		}
		out = append(append(out, line...), crlf...)
	}
	out = appendHeader(out, "X-Apiwarden-Tier", tier)
	out = append(append(append(out, "X-Forwarded-For: "...), peer...), crlf...)
	out = append(append(append(out, "X-Forwarded-Host: "...), host...), crlf...)
	out = appendHeader(out, "X-Forwarded-Proto", "http")
	out = append(append(append(out, "X-Request-Id: "...), id...), crlf...)
	out = appendHeader(out, "X-Apiwarden-Key-Id", keyID)
	return req, append(out, crlf...), nil
}

// rewriteAnswer parses the upstream's answer head at the start of in and,
// when it is complete, appends the client's answer head to out: the
// upstream's lines less answerHeadersSet, then the request id id and the
// rate-limit headers (for an interim 1xx answer, its lines alone).
// ans.headLen is 0 while the head is incomplete.
func rewriteAnswer(out, in, id []byte, isHead bool, now time.Time) (ans answer, _ []byte, err error) {
	headLen, first := splitHead(in)
	if headLen == 0 {
		if len(in) > maxHead {
			return ans, out, errBadGateway
		}
		return ans, out, nil
	}
	if len(first) < 12 || !bytes.HasPrefix(first, []byte("HTTP/1.")) {
		return ans, out, errBadGateway
	}
	status, err := strconv.Atoi(string(first[9:12]))
	if err != nil || status == 101 {
		return ans, out, errBadGateway
	}
	ans.headLen = headLen
	if status < 200 {
		ans.interim = true
		return ans, append(out, in[:headLen]...), nil
	}
	noBody := isHead || status == 204 || status == 304
	haveLength := false
	out = append(append(out, first...), crlf...)
	lines := headerLines{rest: in[len(first)+2 : headLen]}
	for line, name, value, ok := lines.next(); ok; line, name, value, ok = lines.next() {
		switch {
		case name == nil:
			return ans, out, errBadGateway
		case headerIs(name, "Content-Length"):
			if ans.bodyLen, haveLength = parseLength(value); !haveLength {
				return ans, out, errBadGateway
			}
		case headerIs(name, "Transfer-Encoding"):
			if !noBody {
				return ans, out, errBadGateway
			}
		case headerIs(name, "Connection"):
			ans.closeAfter = bytes.EqualFold(value, []byte("close"))
		}
		if headerIn(name, answerHeadersSet[:]) {
			continue
		}
		out = append(append(out, line...), crlf...)
	}
	switch {
	case noBody:
		ans.bodyLen = 0
	case !haveLength:
		return ans, out, errBadGateway
	}
	return ans, append(appendAnswerHeaders(out, id, now), crlf...), nil
}

// parseLength parses a Content-Length value.
func parseLength(value []byte) (int, bool) {
	n, err := strconv.Atoi(string(value))
	return n, err == nil && n >= 0
}

// appendAnswerHeaders appends what apiwarden adds to an allowed answer, the
// numbers formatted per request as apiwarden formats them.
func appendAnswerHeaders(out, id []byte, now time.Time) []byte {
	out = append(append(append(out, "X-Request-Id: "...), id...), crlf...)
	out = strconv.AppendInt(append(out, "X-Ratelimit-Reset: "...), now.Unix()+1, 10)
	out = appendHeader(append(out, crlf...), "Ratelimit-Policy", ratelimitPolicy)
	out = strconv.AppendInt(append(out, "Ratelimit: "+ratelimitHeadText...), remaining, 10)
	out = append(out, ";t=1\r\n"...)
	out = strconv.AppendInt(append(out, "X-Ratelimit-Limit: "...), limit, 10)
	out = strconv.AppendInt(append(out, "\r\nX-Ratelimit-Remaining: "...), remaining, 10)
	return append(out, crlf...)
}

// appendRequestID appends the request id of the n-th request.
func appendRequestID(out []byte, n uint64) []byte {
	return strconv.AppendUint(append(out, requestIDPrefix...), n, 10)
}

func appendHeader(out []byte, name, value string) []byte {
	out = append(append(append(out, name...), ": "...), value...)
	return append(out, crlf...)
}

// headerIs reports whether the header name is want, ignoring ASCII case.
func headerIs(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := range len(name) {
		if lower(name[i]) != lower(want[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func headerIn(name []byte, set []string) bool {
	for _, want := range set {
		if headerIs(name, want) {
			return true
		}
	}
	return false
}
