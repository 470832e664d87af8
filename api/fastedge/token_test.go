package fastedge

import (
	"strings"
	"testing"
)

// tokenByte takes exactly RFC 9110's tchar: the letters, the digits and
// "!#$%&'*+-.^_`|~", and no other byte of the 256.
func TestTokenByteIsTchar(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if got := TokenByte(c); got != want {
			t.Errorf("TokenByte(%#x %q) = %v, want %v", c, c, got, want)
		}
	}
}

// BenchmarkHeaderNames is proxyInbound's check of the header names of a
// proxied request: the peer benchmark's and a browser's common ones.
func BenchmarkHeaderNames(b *testing.B) {
	names := [][]byte{[]byte("Host"), []byte("X-Api-Key"), []byte("Authorization"), []byte("User-Agent"),
		[]byte("Accept"), []byte("Accept-Encoding"), []byte("Content-Type"), []byte("X-Forwarded-For")}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			if !Token(n) {
				b.Fatal(string(n))
			}
		}
	}
}
