package fastedge

// Token reports whether a header name or method is an RFC 9110 token,
// as net/http requires: the lean path's rule, also for another edge that
// reads request heads itself (api/loopedge).
func Token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !TokenByte(c) {
			return false
		}
	}
	return true
}

// TokenByte reports whether c may be part of an RFC 9110 token: one bit
// test, as every byte of every header name of a proxied request goes
// through it (docs/BENCHMARKS.md, "apiwarden above its floor, second
// pass").
func TokenByte(c byte) bool {
	set := tokenBelow64
	if c >= 64 {
		set = tokenFrom64
	}
	return c < 128 && set>>(c&63)&1 != 0
}

// The RFC 9110 token bytes, "!#$%&'*+-.^_`|~" and the ASCII letters and
// digits, as two 64-bit sets: bytes 0–63 in tokenBelow64, 64–127 in
// tokenFrom64 (bit c-64).
const (
	tokenBelow64 uint64 = 1<<'!' | 1<<'#' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' |
		1<<'*' | 1<<'+' | 1<<'-' | 1<<'.' | (1<<10-1)<<'0'
	tokenFrom64 uint64 = (1<<26-1)<<('A'-64) | 1<<('^'-64) | 1<<('_'-64) |
		1<<('`'-64) | (1<<26-1)<<('a'-64) | 1<<('|'-64) | 1<<('~'-64)
)

// FieldValue reports whether a header value has no control byte but
// tab, as net/http requires.
func FieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
