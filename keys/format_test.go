package keys_test

import (
	"hash/crc32"
	"regexp"
	"testing"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// ContainsKey finds a key inside a longer value, after any character
// and before any that is not base62, and nothing without a whole key.
func TestContainsKey(t *testing.T) {
	_, secret := mustCreate(t, newService(t, storetest.MustOpen(t), newClock(t0)), keys.CreateParams{Tier: "free"})
	forged := secret[:len(secret)-1] + "A"
	if secret[len(secret)-1] == 'A' {
		forged = secret[:len(secret)-1] + "B"
	}
	for _, c := range []struct {
		s    string
		want bool
	}{
		{secret, true},
		{"Bearer " + secret + ",x", true},
		{"token=" + secret + ";", true},
		{"/keys/" + secret + "/page", true},
		{"ab" + secret, true},   // run into other letters
		{"x_y_" + secret, true}, // after other underscores
		{secret + "x", false},   // the body runs on
		{secret[:len(secret)-1], false},
		{"key=" + forged, false}, // the checksum fails
		{"Mozilla/5.0 (X11; Linux x86_64)", false},
		{"", false},
		{"_", false},
	} {
		if got := keys.ContainsKey(c.s); got != c.want {
			t.Errorf("ContainsKey(%q) = %v, want %v", c.s, got, c.want)
		}
	}
	value := "a=1; token=" + forged + "; b=2"
	if n := testing.AllocsPerRun(100, func() { keys.ContainsKey(value) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// LooksLikeKey knows a created key, of any prefix, by its shape and
// checksum alone, and nothing that differs from one in a character.
func TestLooksLikeKey(t *testing.T) {
	_, secret := mustCreate(t, newService(t, storetest.MustOpen(t), newClock(t0)), keys.CreateParams{Tier: "free"})
	body := secret[len("wsk_"):]
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	cases := []struct {
		s    string
		want bool
	}{
		{secret, true},
		{flip(secret, len(secret)-1), false}, // checksum
		{flip(secret, 5), false},             // body
		{"other_" + body, false},             // the checksum covers the prefix
		{secret + "x", false},
		{secret[1:], false},
		{"Bearer " + secret, false},
		{"", false},
	}
	for _, c := range cases {
		if got := keys.LooksLikeKey(c.s); got != c.want {
			t.Errorf("LooksLikeKey(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

// keyShape is the format keys/format.go describes, written the plain way:
// a prefix of 1-16 of a-z and 0-9, '_', 36 base62 characters.
var keyShape = regexp.MustCompile(`^[a-z0-9]{1,16}_[0-9A-Za-z]{36}$`)

// withChecksum is s with its last six characters replaced by the base62
// CRC-32 of the rest, most significant digit first.
func withChecksum(s string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	head := s[:len(s)-6]
	digits := make([]byte, 6)
	for i, v := 5, uint64(crc32.ChecksumIEEE([]byte(head))); i >= 0; i-- {
		digits[i], v = alphabet[v%62], v/62
	}
	return head + string(digits)
}

// LooksLikeKey agrees with the plain reading of the format for every byte
// in every position of a key, with its checksum as it was and recomputed
// (so that a wrong character is caught by the shape, not only the sum).
func TestLooksLikeKeyEveryByte(t *testing.T) {
	_, secret := mustCreate(t, newService(t, storetest.MustOpen(t), newClock(t0)), keys.CreateParams{Tier: "free"})
	body := secret[len("wsk_"):]
	oracle := func(s string) bool { return keyShape.MatchString(s) && withChecksum(s) == s }
	for _, key := range []string{secret, withChecksum("a_" + body), withChecksum("0123456789abcdef_" + body)} {
		if !oracle(key) || !keys.LooksLikeKey(key) {
			t.Fatalf("%q is not a key", key)
		}
		for i := range len(key) {
			for c := range 256 {
				s := key[:i] + string([]byte{byte(c)}) + key[i+1:]
				for _, s := range []string{s, withChecksum(s)} {
					if got, want := keys.LooksLikeKey(s), oracle(s); got != want {
						t.Fatalf("LooksLikeKey(%q) = %v, want %v", s, got, want)
					}
				}
			}
		}
	}
}
