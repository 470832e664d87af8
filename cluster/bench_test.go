package cluster_test

import (
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/keys"
)

// BenchmarkVerifyMirror: a valid key that reached this instance's mirror
// from PostgreSQL, in the cache. Verify reads only the mirror, so this
// should match keys' BenchmarkVerifyCached (the request path does not
// know cluster mode is on).
func BenchmarkVerifyMirror(b *testing.B) {
	url := pg.Database(b)
	a, other := newInstance(b, url), newInstance(b, url)
	_, secret, err := a.keys.Create(keys.CreateParams{Tier: "free"}, "admin")
	if err != nil {
		b.Fatal(err)
	}
	within(b, 5*time.Second, "key mirrored", func() bool { _, err := other.keys.Verify(time.Now(), secret); return err == nil })
	now := time.Now()
	for range 100 { // let ristretto admit the entry
		other.keys.Verify(now, secret)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := other.keys.Verify(now, secret); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeyPropagation: 1,000 keys created one after another on one
// instance; for each, the time from Create returning to the other
// instance's mirror having applied it (from then on, it verifies there).
// Reports p50, p99 and max in milliseconds; the goal is p99 ≤ 1 s.
func BenchmarkKeyPropagation(b *testing.B) {
	url := pg.Database(b)
	a, other := newInstance(b, url), newInstance(b, url)
	within(b, 5*time.Second, "listeners connected", func() bool { return a.cluster.Healthy() && other.cluster.Healthy() })
	const changes = 1000
	for b.Loop() {
		lags := make([]time.Duration, 0, changes)
		for range changes {
			if _, _, err := a.keys.Create(keys.CreateParams{Tier: "free"}, "admin"); err != nil {
				b.Fatal(err)
			}
			written := time.Now()
			want := a.keys.MirrorSeq()
			for other.keys.MirrorSeq() < want {
				if time.Since(written) > 10*time.Second {
					b.Fatalf("change %d not mirrored in 10s", want)
				}
				time.Sleep(50 * time.Microsecond)
			}
			lags = append(lags, time.Since(written))
		}
		slices.Sort(lags)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lags[len(lags)/2]), "p50-ms")
		b.ReportMetric(ms(lags[len(lags)*99/100]), "p99-ms")
		b.ReportMetric(ms(lags[len(lags)-1]), "max-ms")
	}
}
