package fastedge

// Token reports whether a header name or method is an RFC 9110 token, as
// net/http requires: the lean path's rule, for another edge that reads
// request heads itself (api/loopedge).
func Token(b []byte) bool { return token(b) }

// TokenByte reports whether c may be part of an RFC 9110 token.
func TokenByte(c byte) bool { return tokenByte(c) }

// FieldValue reports whether a header value has no control byte but tab,
// as net/http requires.
func FieldValue(b []byte) bool { return fieldValue(b) }
