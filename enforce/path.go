package enforce

import (
	"errors"
	"strings"
)

// Errors of PathRules.Normalize, one per rule a path can break.
var (
	ErrPathSemicolon    = errors.New("enforce: the path has a ';' (a path parameter), raw or as %3B")
	ErrPathBackslash    = errors.New("enforce: the path has a '\\', raw or as %5C")
	ErrPathEncodedSlash = errors.New("enforce: the path has an encoded '/' (%2F)")
	ErrPathNUL          = errors.New("enforce: the path has a NUL byte (%00)")
	ErrPathLineBreak    = errors.New("enforce: the path has an encoded line break (%0A or %0D)")
	ErrPathDotSegment   = errors.New("enforce: the path has a '..' segment")
	ErrPathEncoding     = errors.New("enforce: the path has a '%' that is not followed by two hex digits")
)

// PathRules decide which request paths are refused before any route is
// matched, and turn the others into the path routes are matched on.
//
// A path is refused when an upstream may read it differently from the
// route table: Tomcat, Jetty and Spring drop ";…" from a segment
// ("/api;/admin" is their "/api/admin"), IIS reads "\" as "/", some
// upstreams decode %2F, %5C and %3B before routing and others do not, and
// one that does not resolve "..", or resolves it after decoding, serves
// another path than the one judged. The zero value refuses all of these,
// as Spring's StrictHttpFirewall does; each Allow field lets one kind
// through for an upstream that needs it. NUL, encoded line breaks (which
// split log lines and headers where an upstream echoes a decoded path)
// and malformed percent-encoding are always refused.
type PathRules struct {
	// AllowSemicolons lets ';' and %3B through. Routes are then matched
	// as Tomcat reads the path: a raw ';' ends the segment's name.
	AllowSemicolons bool
	// AllowBackslashes lets '\' and %5C through. Routes are then matched
	// as IIS reads the path: '\' separates segments like '/'.
	AllowBackslashes bool
	// AllowEncodedSlashes lets %2F through. Routes are matched on the
	// decoded path, where it separates segments.
	AllowEncodedSlashes bool
	// AllowDotSegments lets ".." through. Routes are matched on the path
	// with dot segments resolved (CleanPath), and the proxy forwards that
	// resolved path.
	AllowDotSegments bool
}

// Normalize checks escaped, a request path as the client sent it
// (percent-encoded, without the query), against the rules. It returns
// the path routes are matched on: decoded, read as the Allow fields say,
// and cleaned (CleanPath). The error is one of the ErrPath values. A path
// with no '%', ';' or '\' costs no allocation.
func (pr PathRules) Normalize(escaped string) (string, error) {
	rewrite := false
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch c {
		case '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", ErrPathEncoding
			}
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			if c == '/' && !pr.AllowEncodedSlashes {
				return "", ErrPathEncodedSlash
			}
			i += 2
		case ';', '\\':
		default:
			if c != 0 && c != '\r' && c != '\n' {
				continue
			}
		}
		if err := pr.check(c); err != nil {
			return "", err
		}
		rewrite = true
	}
	p := escaped
	if rewrite {
		p = pr.read(escaped)
	}
	if !pr.AllowDotSegments && hasDotDot(p) {
		return "", ErrPathDotSegment
	}
	return CleanPath(p), nil
}

// check refuses a byte, raw or decoded, that the rules do not allow.
func (pr PathRules) check(c byte) error {
	switch {
	case c == 0:
		return ErrPathNUL
	case c == '\r' || c == '\n':
		return ErrPathLineBreak
	case c == ';' && !pr.AllowSemicolons:
		return ErrPathSemicolon
	case c == '\\' && !pr.AllowBackslashes:
		return ErrPathBackslash
	}
	return nil
}

// read decodes escaped, which Normalize has checked, and reads it as the
// Allow fields say: a raw ';' drops the rest of its segment, and '\'
// (raw or decoded) separates segments.
func (pr PathRules) read(escaped string) string {
	var b strings.Builder
	b.Grow(len(escaped))
	inParams := false // after a raw ';', until the segment ends
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		raw := true
		if c == '%' {
			c, raw = unhex(escaped[i+1])<<4|unhex(escaped[i+2]), false
			i += 2
		}
		switch {
		case c == '\\':
			c = '/'
		case c == ';' && raw:
			inParams = true
		}
		if c == '/' {
			inParams = false
		}
		if !inParams {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// hasDotDot reports whether a segment of p is "..".
func hasDotDot(p string) bool {
	for rest := p; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if seg == ".." {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex is the value of a hex digit (isHex).
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
