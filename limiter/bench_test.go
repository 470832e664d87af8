package limiter

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchTiers are large enough that most benchmark requests are admitted,
// so the benchmark measures the debit path.
var benchTiers = map[string]Tier{
	"big": {RequestsPerHour: 1 << 40, BurstPerMinute: 1 << 34},
}

func benchSubjects(n int) []Subject {
	s := make([]Subject, n)
	for i := range s {
		s[i] = Subject("ip:10.0." + strconv.Itoa(i))
	}
	return s
}

func BenchmarkAllowAt(b *testing.B) {
	for _, bc := range []struct {
		name     string
		subjects int
	}{{"hot", 1}, {"many", 100_000}} {
		subjects := benchSubjects(bc.subjects)
		benchAllowAt(b, bc.name, subjects, subjects)
	}
}

// BenchmarkAllowAtShuffled is AllowAt/many with the 100k subjects visited in
// a fixed random order, so that neither the order the entries were created
// in nor the order the subject strings were allocated in lets a hardware
// prefetcher hide misses. In "copied" each request carries its own copy of
// the subject string, as a server that builds IPSubject(address) per request
// does, so comparing it with the stored key reads the stored bytes.
func BenchmarkAllowAtShuffled(b *testing.B) {
	const n = 100_000
	stored := benchSubjects(n)
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	same := make([]Subject, n)
	copied := make([]Subject, n)
	for i, j := range order {
		same[i] = stored[j]
		copied[i] = Subject(strings.Clone(string(stored[j])))
	}
	benchAllowAt(b, "same", stored, same)
	benchAllowAt(b, "copied", stored, copied)
}

// benchAllowAt runs name/serial and name/parallel: a limiter that knows
// the stored subjects decides requests for the requests' subjects in turn.
func benchAllowAt(b *testing.B, name string, stored, requests []Subject) {
	newLimiter := func(b *testing.B) *Limiter {
		l := newTestLimiter(b, Options{Tiers: benchTiers})
		for _, s := range stored {
			l.AllowAt(t0, Request{Subject: s, Tier: "big"})
		}
		b.ReportAllocs()
		b.ResetTimer()
		return l
	}
	b.Run(name+"/serial", func(b *testing.B) {
		l := newLimiter(b)
		for i := 0; b.Loop(); i++ {
			l.AllowAt(t0.Add(time.Duration(i)), Request{Subject: requests[i%len(requests)], Tier: "big"})
		}
	})
	b.Run(name+"/parallel", func(b *testing.B) {
		l := newLimiter(b)
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1) * 7919)
			for pb.Next() {
				i++
				l.AllowAt(t0.Add(time.Duration(i)), Request{Subject: requests[i%len(requests)], Tier: "big"})
			}
		})
	})
}

func BenchmarkAllowAtWithRoute(b *testing.B) {
	l := newTestLimiter(b, Options{Tiers: benchTiers})
	req := Request{Subject: "key_123", Tier: "big", Route: "forms.read", RoutePerMinute: 1 << 34}
	l.AllowAt(t0, req)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.AllowAt(t0.Add(time.Duration(i)), req)
	}
}

func BenchmarkHeaders(b *testing.B) {
	l := newTestLimiter(b, Options{Tiers: testTiers})
	res := l.AllowAt(t0, Request{Subject: "k", Tier: "free", Route: "r", RoutePerMinute: 5})
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = res.AppendPolicyHeader(buf[:0])
		buf = res.AppendRateLimitHeader(buf[:0])
	}
}

// BenchmarkPolicyTexts: the RateLimit-Policy value and the limits of a
// set seen before, against BenchmarkHeaders' formatting of them.
func BenchmarkPolicyTexts(b *testing.B) {
	l := newTestLimiter(b, Options{Tiers: testTiers})
	res := l.AllowAt(t0, Request{Subject: "k", Tier: "free", Route: "r", RoutePerMinute: 5})
	var texts PolicyTexts
	texts.Of(&res)
	b.ReportAllocs()
	for b.Loop() {
		if texts.Of(&res).Policy == "" {
			b.Fatal("no policy")
		}
	}
}

func BenchmarkSnapshot(b *testing.B) {
	// Encoding cost only: the write path is the store's.
	l := newTestLimiter(b, Options{Tiers: benchTiers})
	for _, s := range benchSubjects(10_000) {
		l.AllowAt(t0, Request{Subject: s, Tier: "big"})
	}
	var batch snapshotBatch
	b.ReportAllocs()
	for b.Loop() {
		for i := range l.shards {
			batch.reset()
			collect(&l.shards[i], &batch, t0.UnixNano(), 0, true)
		}
	}
}
