package gateway

import "testing"

// TestCallScrubsAsTheRule: a call's ScrubHeaderValue, which drops the
// key its decision verified without a format check, answers as
// ScrubHeaderValue does for that value and for others.
func TestCallScrubsAsTheRule(t *testing.T) {
	c := &ProxyCall{key: sampleKey}
	for _, h := range [][2]string{
		{"X-Api-Key", sampleKey}, {"X-Api-Key", "plain"}, {"X-Api-Key", sampleKey[:len(sampleKey)-1] + "x"},
		{"X-Api-Key", " " + sampleKey}, {"Authorization", sampleKey}, {"Authorization", "Bearer " + sampleKey},
		{"Authorization", "bearer  " + sampleKey + " "}, {"Authorization", "Bearer " + sampleKey + "x"},
		{"Authorization", "Token " + sampleKey}, {"Authorization", "Bearer plain"}, {"Authorization", "Bearer"},
		{"X-Other", sampleKey}, {"Cookie", "k=" + sampleKey}, {"X-Apiwarden-Owner", "x"},
	} {
		clean, keep, changed := c.ScrubHeaderValue(h[0], h[1])
		wantClean, wantKeep, wantChanged := ScrubHeaderValue(h[0], h[1])
		if clean != wantClean || keep != wantKeep || changed != wantChanged {
			t.Errorf("%s: %q: %q %v %v, want %q %v %v", h[0], h[1], clean, keep, changed, wantClean, wantKeep, wantChanged)
		}
	}
}

// BenchmarkScrubVerifiedKey: the X-Api-Key value and the Authorization
// Bearer credentials of a request whose key was verified, scrubbed by
// the rule (a format check) and by its call.
func BenchmarkScrubVerifiedKey(b *testing.B) {
	key := string([]byte(sampleKey)) // not the constant: a server's value is a view of its buffer
	for _, h := range [][2]string{{"X-Api-Key", key}, {"Authorization", "Bearer " + key}} {
		b.Run(h[0]+"/rule", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, keep, _ := ScrubHeaderValue(h[0], h[1]); keep {
					b.Fatal("kept")
				}
			}
		})
		b.Run(h[0]+"/call", func(b *testing.B) {
			c := &ProxyCall{key: sampleKey}
			b.ReportAllocs()
			for b.Loop() {
				if _, keep, _ := c.ScrubHeaderValue(h[0], h[1]); keep {
					b.Fatal("kept")
				}
			}
		})
	}
}
