package keys_test

import (
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
