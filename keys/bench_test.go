package keys_test

import (
	"errors"
	"testing"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// BenchmarkVerifyCached: a valid key already in the cache, the common case
// on the request path (goal ≤ 1 µs/op, ≤ 1 alloc).
func BenchmarkVerifyCached(b *testing.B) {
	clk := newClock(t0)
	svc := newService(b, storetest.MustOpen(b), clk)
	_, secret := mustCreate(b, svc, keys.CreateParams{Tier: "free"})
	for range 100 { // let ristretto admit the entry
		svc.Verify(clk.Now(), secret)
	}
	now := clk.Now()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Verify(now, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := svc.Verify(now, secret); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkVerifyUnknown: a well-formed key with a valid checksum that no
// record matches — what a flood of forged keys costs (no disk read).
func BenchmarkVerifyUnknown(b *testing.B) {
	clk := newClock(t0)
	svc := newService(b, storetest.MustOpen(b), clk)
	for range 1000 {
		mustCreate(b, svc, keys.CreateParams{Tier: "free"})
	}
	other := newService(b, storetest.MustOpen(b), clk)
	forged := make([]string, 1024)
	for i := range forged {
		_, forged[i] = mustCreate(b, other, keys.CreateParams{Tier: "free"})
	}
	now := clk.Now()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := svc.Verify(now, forged[i%len(forged)]); !errors.Is(err, keys.ErrNotFound) {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := svc.Verify(now, forged[i%len(forged)]); !errors.Is(err, keys.ErrNotFound) {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// BenchmarkVerifyMalformed: noise rejected by the checksum.
func BenchmarkVerifyMalformed(b *testing.B) {
	clk := newClock(t0)
	svc := newService(b, storetest.MustOpen(b), clk)
	_, secret := mustCreate(b, svc, keys.CreateParams{Tier: "free"})
	bad := secret[:10] + "x" + secret[11:]
	now := clk.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Verify(now, bad); !errors.Is(err, keys.ErrMalformed) {
			b.Fatal(err)
		}
	}
}

// BenchmarkLooksLikeKey: the format and checksum check every presented
// key (Verify) and every scrubbed header value goes through.
func BenchmarkLooksLikeKey(b *testing.B) {
	_, secret := mustCreate(b, newService(b, storetest.MustOpen(b), newClock(t0)), keys.CreateParams{Tier: "free"})
	b.ReportAllocs()
	for b.Loop() {
		if !keys.LooksLikeKey(secret) {
			b.Fatal("not a key")
		}
	}
}
