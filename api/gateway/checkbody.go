package gateway

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apiwarden/apiwarden/api/httpapi"
)

// The body of POST /v1/check is decoded by hand (decodeCheckFast), with
// encoding/json (httpapi.DecodeJSONBytes) behind it for whatever the hand
// decoder does not take. The contract is encoding/json's, with unknown
// fields disallowed, as httpapi.DecodeJSONFrom applies it:
//
//   - Content-Type absent or application/json (parameters allowed), else
//     415 UNSUPPORTED_MEDIA_TYPE; a body over httpapi.MaxJSONBody, 413.
//   - A body of nothing but white space (bytes.TrimSpace's, so \v and
//     U+0085 too): 400 INVALID_JSON "request body is empty".
//   - Exactly one JSON value, then only JSON white space: anything after
//     it is 400 INVALID_JSON, as is malformed JSON (a control character
//     or a bad escape in a string, a leading zero, a byte order mark...).
//   - The value null decodes as an empty request: it is taken.
//   - Field names match case-insensitively (exact spelling first; "KEY",
//     "k\u0065y" and "\u212aey", with the Kelvin sign, are all "key");
//     any other name is 400 INVALID_JSON `unknown field "x"`.
//   - A field given twice: the last one counts; null leaves a field as it
//     was.
//   - key, method, path, ip and origin are strings, cost an integer that
//     fits in 64 bits (1.0, 1e2 and "1" are refused): another type is 400
//     INVALID_JSON `field "cost" must be a number, got string`.
//   - Strings: escapes are decoded (\u0000 too), a lone surrogate and
//     invalid UTF-8 become U+FFFD; none of that is refused here.
//
// The hand decoder takes the common case: an object whose names are the
// exact field names, spelled without escapes, and whose values are
// strings, null or, for cost, an integer of up to 18 digits. On anything
// else it gives up and encoding/json decides, so an error answer is
// always encoding/json's, word for word. FuzzCheckBody holds the two to
// the same verdict and the same fields.

// decodeCheckBody decodes the body of a check into req with the
// contract above. It keeps no reference to data; the strings it sets
// share one copy of it, since they outlive the request (the record of
// the decision keeps the method and path, and data may be fasthttp's
// buffer, which serves the next request). Safe for concurrent use.
func decodeCheckBody(data []byte, req *checkRequest) *httpapi.Error {
	if err := httpapi.JSONBodySize(len(data)); err != nil {
		return httpapi.AsError(err)
	}
	if decodeCheckFast(string(data), req) {
		return nil
	}
	// A variable of its own, so that only this path moves one to the heap.
	var slow checkRequest
	if err := httpapi.DecodeJSONBytes(data, &slow, false); err != nil {
		return httpapi.AsError(err)
	}
	*req = slow
	return nil
}

// decodeCheckFast decodes s into req when s is in the common case the
// comment above names, and says whether it did; req's strings are
// substrings of s, or new strings where s has escapes. On false req may
// hold some fields of s. It only reads s: safe to run on many goroutines.
func decodeCheckFast(s string, req *checkRequest) bool {
	i := skipSpace(s, 0)
	if i == len(s) || s[i] != '{' {
		return false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return skipSpace(s, i+1) == len(s)
	}
	for {
		name, j, ok := plainName(s, i)
		if !ok {
			return false
		}
		j = skipSpace(s, j)
		if j == len(s) || s[j] != ':' {
			return false
		}
		if i, ok = checkField(s, skipSpace(s, j+1), name, req); !ok {
			return false
		}
		i = skipSpace(s, i)
		switch {
		case i == len(s):
			return false
		case s[i] == ',':
			i = skipSpace(s, i+1)
		case s[i] == '}':
			return skipSpace(s, i+1) == len(s)
		default:
			return false
		}
	}
}

// checkField decodes the value at s[i:] of the field name into req and
// returns the index after it; false when name is not a field of
// checkRequest spelled exactly or the value is not one the fast decoder
// takes.
func checkField(s string, i int, name string, req *checkRequest) (int, bool) {
	if name == "cost" {
		return costValue(s, i, &req.Cost)
	}
	var dst *string
	switch name {
	case "key":
		dst = &req.Key
	case "method":
		dst = &req.Method
	case "path":
		dst = &req.Path
	case "ip":
		dst = &req.IP
	case "origin":
		dst = &req.Origin
	default:
		return 0, false
	}
	if isNull(s, i) {
		return i + 4, true
	}
	v, j, ok := stringValue(s, i)
	if ok {
		*dst = v
	}
	return j, ok
}

// isNull says whether s[i:] starts with null (what follows is the
// caller's to check).
func isNull(s string, i int) bool {
	return len(s)-i >= 4 && s[i:i+4] == "null"
}

// skipSpace returns the index of the first byte at or after i that is
// not JSON white space.
func skipSpace(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plainName reads a field name at s[i:] spelled without escapes or
// control characters and returns it and the index after its closing
// quote.
func plainName(s string, i int) (string, int, bool) {
	if i == len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c == '\\' || c < ' ':
			return "", 0, false
		}
	}
	return "", 0, false
}

// costValue decodes an integer of at most 18 digits, or null, at s[i:]
// into *cost and returns the index after it. A number that is not
// followed by white space, ',' or '}' (1.5, 1e3, 01) is the caller's to
// refuse.
func costValue(s string, i int, cost *int) (int, bool) {
	if isNull(s, i) {
		return i + 4, true
	}
	neg := i < len(s) && s[i] == '-'
	if neg {
		i++
	}
	start, n := i, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 18 {
		n = n*10 + int(s[i]-'0')
		i++
		if s[start] == '0' {
			break
		}
	}
	if i == start {
		return 0, false
	}
	if neg {
		n = -n
	}
	*cost = n
	return i, true
}

// stringValue reads the JSON string at s[i:] and returns its value and
// the index after its closing quote: a substring of s when it has no
// escapes and is valid UTF-8, else a new string decoded as encoding/json
// decodes it. False when s[i:] is not a well-formed string.
func stringValue(s string, i int) (string, int, bool) {
	if i == len(s) || s[i] != '"' {
		return "", 0, false
	}
	plain := true
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			v := s[i+1 : j]
			if plain && utf8.ValidString(v) {
				return v, j + 1, true
			}
			v, ok := unescape(v)
			return v, j + 1, ok
		case c == '\\':
			plain = false
			j++ // the escaped byte is unescape's to check; it may be '"'
		case c < ' ':
			return "", 0, false
		}
	}
	return "", 0, false
}

// unescape decodes the inside of a JSON string as encoding/json does
// (decode.go's unquoteBytes): escapes, a surrogate pair from two \u
// escapes, U+FFFD for a lone surrogate and for each byte of invalid
// UTF-8. False on a malformed escape.
func unescape(s string) (string, bool) {
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			if r+1 == len(s) {
				return "", false
			}
			if e := simpleEscape(s[r+1]); e != 0 {
				b = append(b, e)
				r += 2
				continue
			}
			rr := hex4(s, r)
			if rr < 0 {
				return "", false
			}
			r += 6
			if utf16.IsSurrogate(rr) {
				if dec := utf16.DecodeRune(rr, hex4(s, r)); dec != unicode.ReplacementChar {
					b = utf8.AppendRune(b, dec)
					r += 6
					continue
				}
				rr = unicode.ReplacementChar
			}
			b = utf8.AppendRune(b, rr)
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRuneInString(s[r:])
			b = utf8.AppendRune(b, rr)
			r += size
		}
	}
	return string(b), true
}

// simpleEscape is the byte a one-letter escape \c stands for, 0 for any
// other c (\u is hex4's).
func simpleEscape(c byte) byte {
	switch c {
	case '"', '\\', '/':
		return c
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return 0
}

// hex4 reads a \uXXXX escape at s[i:]; -1 when there is none.
func hex4(s string, i int) rune {
	if len(s)-i < 6 || s[i] != '\\' || s[i+1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range []byte(s[i+2 : i+6]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
