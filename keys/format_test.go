package keys_test

import (
	"testing"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

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
