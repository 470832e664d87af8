package keys

import (
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"unsafe"
)

// A key is "<prefix>_<body>": body is secretChars random base62 characters
// (178 bits from crypto/rand) followed by checksumChars base62 characters of
// the CRC-32 of everything before them. The checksum lets a secret scanner,
// or Verify before any lookup, tell a real key from a typo or noise.
const (
	secretChars   = 30
	checksumChars = 6
	bodyChars     = secretChars + checksumChars
	startChars    = 6 // body characters kept in the record's "start"
	maxPrefix     = 16
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// generate returns a new key with the given prefix.
func generate(prefix string) string {
	b := make([]byte, 0, len(prefix)+1+bodyChars)
	b = append(b, prefix...)
	b = append(b, '_')
	b = appendRandomBase62(b, secretChars)
	b = appendChecksum(b, crc32.ChecksumIEEE(b))
	return string(b)
}

// appendRandomBase62 draws n uniformly random base62 characters by
// rejection sampling, so no character is more likely than another.
func appendRandomBase62(dst []byte, n int) []byte {
	var buf [64]byte
	for n > 0 {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails on Linux (Go 1.24+)
		for _, c := range buf {
			if c >= 248 { // 248 = 4*62: keep the modulo unbiased
				continue
			}
			dst = append(dst, base62[c%62])
			if n--; n == 0 {
				break
			}
		}
	}
	return dst
}

func appendChecksum(dst []byte, sum uint32) []byte {
	var digits [checksumChars]byte
	v := uint64(sum)
	for i := checksumChars - 1; i >= 0; i-- {
		digits[i] = base62[v%62]
		v /= 62
	}
	return append(dst, digits[:]...)
}

// LooksLikeKey reports whether s has the shape of a key of any prefix
// ("<prefix>_<body>") and its checksum matches: what a secret scanner
// flags, and what the proxy keeps from the upstream. It neither looks the
// key up nor allocates, so callers can test every header value with it.
func LooksLikeKey(s string) bool { return wellFormed(s) }

// ContainsKey reports whether a key (LooksLikeKey) appears anywhere in s:
// the whole of it, or inside a longer value ("token=<key>;", a URL path,
// "<key>,other"). A key's body must end where s does or at a character
// that is not base62; its prefix may follow any character, so a key run
// into other letters is still found. It allocates nothing, and checks a
// checksum only where a '_' is followed by a body's worth of base62.
func ContainsKey(s string) bool {
	for i := 0; ; i++ {
		next := strings.IndexByte(s[i:], '_')
		if next < 0 {
			return false
		}
		if i += next; i+bodyChars >= len(s) {
			return false
		}
		end := i + 1 + bodyChars
		if end < len(s) && isBase62(s[end]) || !allBase62(s[i+1:end]) {
			continue
		}
		// Every prefix ending at i, shortest first, up to maxPrefix.
		for j := i - 1; j >= 0 && i-j <= maxPrefix && isPrefixChar(s[j]); j-- {
			if wellFormed(s[j:end]) {
				return true
			}
		}
	}
}

func allBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	return true
}

func isPrefixChar(c byte) bool { return charClasses[c]&prefixChar != 0 }

// The classes of a byte in a key: a prefix's (a-z, 0-9) and a body's
// (base62). One table lookup a character, rather than up to three range
// tests, is most of what makes wellFormed cheap.
const (
	prefixChar uint8 = 1 << iota
	bodyChar
)

// charClasses is each byte's classes; it is never written after init.
var charClasses = func() (t [256]uint8) {
	for i := range len(base62) {
		c := base62[i]
		t[c] |= bodyChar
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			t[c] |= prefixChar
		}
	}
	return t
}()

// wellFormed reports whether s looks like a key and its checksum matches.
// It allocates nothing, so rejecting noise is cheap: every request's key
// passes through it (Verify), and every header value the proxy scrubs.
func wellFormed(s string) bool {
	sep := strings.LastIndexByte(s, '_')
	if sep < 1 || sep > maxPrefix || len(s)-sep-1 != bodyChars {
		return false
	}
	// ok keeps its bit while every character has the class its part
	// needs. The checksum's characters are compared with base62 digits
	// below, so only the secret's need the table.
	ok := prefixChar
	for i := 0; i < sep; i++ {
		ok &= charClasses[s[i]]
	}
	if ok == 0 {
		return false
	}
	ok = bodyChar
	for i := sep + 1; i < len(s)-checksumChars; i++ {
		ok &= charClasses[s[i]]
	}
	if ok == 0 {
		return false
	}
	v := uint64(crc32String(s[:len(s)-checksumChars]))
	for i := len(s) - 1; i >= len(s)-checksumChars; i-- {
		if s[i] != base62[v%62] {
			return false
		}
		v /= 62
	}
	return true
}

// crc32String is crc32.ChecksumIEEE over a string without copying it to
// a []byte, which would allocate on this path: the view is only read.
// (ChecksumIEEE takes eight bytes a step where a loop here took one.)
func crc32String(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

func isBase62(c byte) bool { return charClasses[c]&bodyChar != 0 }

// start is the recognisable beginning of a key kept in its record.
func start(key string) string {
	sep := strings.LastIndexByte(key, '_')
	return key[:sep+1+startChars]
}

// newID returns a key id that sorts by creation time: "key_" followed by
// 8 base62 characters of milliseconds since the epoch and 12 random ones.
func newID(unixMilli int64) string {
	b := make([]byte, 0, 4+8+12)
	b = append(b, "key_"...)
	var ts [8]byte
	v := uint64(unixMilli)
	for i := len(ts) - 1; i >= 0; i-- {
		ts[i] = base62[v%62]
		v /= 62
	}
	b = append(b, ts[:]...)
	return string(appendRandomBase62(b, 12))
}

// prefixOf is the first 8 bytes of a hash as an integer: the cache key and
// the shard selector. Collisions only cost a comparison of the full hash.
func prefixOf(h *[32]byte) uint64 { return binary.BigEndian.Uint64(h[:8]) }
