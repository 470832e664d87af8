package keys_test

import (
	"errors"
	"testing"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// FuzzVerify feeds arbitrary strings to the key parser: it must never
// panic, and nothing but a real key may verify.
func FuzzVerify(f *testing.F) {
	clk := newClock(t0)
	svc := newService(f, storetest.MustOpen(f), clk)
	_, secret := mustCreate(f, svc, keys.CreateParams{Tier: "free"})
	f.Add(secret)
	f.Add("wsk_" + secret[4:20])
	f.Add("")
	f.Add("Bearer " + secret)
	f.Fuzz(func(t *testing.T, s string) {
		id, err := svc.Verify(clk.Now(), s)
		switch {
		case err == nil && s != secret:
			t.Fatalf("%q verified as %s", s, id.ID)
		case err != nil && !errors.Is(err, keys.ErrMalformed) && !errors.Is(err, keys.ErrNotFound):
			t.Fatalf("%q: unexpected error %v", s, err)
		}
	})
}
