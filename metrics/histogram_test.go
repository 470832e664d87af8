package metrics

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketIndexMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 100000 {
		v := math.Exp(rng.NormFloat64() * 8)
		i := BucketIndex(v)
		if i < minBucketIndex || i >= maxBucketIndex {
			continue // clamped: counted as zero or in the top bucket
		}
		lower, upper := BucketBounds(i)
		if !(v > lower && v <= upper) {
			t.Fatalf("v=%v in bucket %d = (%v, %v]", v, i, lower, upper)
		}
		if want := int(math.Ceil(math.Log2(v) * 8)); absInt(want-i) > 1 {
			t.Fatalf("v=%v: index %d, ceil(log2(v)*8) = %d", v, i, want)
		}
	}
	// Exact powers of two are upper bounds: 1 is in bucket 0, 2 in 8.
	for _, tc := range []struct {
		v    float64
		want int
	}{{1, 0}, {2, 8}, {0.5, -8}, {1024, 80}, {1.0000001, 1}, {math.Inf(1), maxBucketIndex}, {1e300, maxBucketIndex}} {
		if got := BucketIndex(tc.v); got != tc.want {
			t.Errorf("BucketIndex(%v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestQuantileWithinRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for round := range 200 {
		var h Histogram
		n := 1 + rng.IntN(3000)
		values := make([]float64, n)
		for i := range values {
			switch round % 3 {
			case 0:
				values[i] = math.Exp(rng.NormFloat64()*1.2 + 3) // latencies in ms
			case 1:
				values[i] = rng.Float64() * 1000
			default:
				values[i] = float64(1 + rng.IntN(5)) // few distinct values
			}
			h.Add(values[i])
		}
		slices.Sort(values)
		for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
			rank := max(int(math.Ceil(q*float64(n))), 1)
			exact := values[rank-1]
			got := h.Quantile(q)
			if rel := math.Abs(got-exact) / exact; rel > HistogramRelativeError+1e-12 {
				t.Fatalf("round %d q=%v: %v, exact %v, relative error %v", round, q, got, exact, rel)
			}
		}
		if h.Count() != uint64(n) {
			t.Fatalf("count %d, want %d", h.Count(), n)
		}
	}
}

func TestHistogramZeroAndEmpty(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram quantile is not 0")
	}
	h.Add(0)
	h.Add(-3)
	h.Add(math.NaN())
	h.Add(1e-20) // below the smallest bucket: counts as zero
	h.Add(10)
	if h.Count() != 4 || h.ZeroCount() != 3 {
		t.Fatalf("count %d zero %d", h.Count(), h.ZeroCount())
	}
	if h.Quantile(0.5) != 0 || h.Quantile(1) < 9.5 {
		t.Fatalf("quantiles %v %v", h.Quantile(0.5), h.Quantile(1))
	}
}

func TestMergeEqualsAddingEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	var all, merged Histogram
	for range 50 {
		var part Histogram
		scale := math.Exp(rng.NormFloat64() * 4)
		for range rng.IntN(200) {
			v := rng.ExpFloat64() * scale
			part.Add(v)
			all.Add(v)
		}
		merged.Merge(&part)
	}
	a, _ := all.MarshalBinary()
	m, _ := merged.MarshalBinary()
	if string(a) != string(m) {
		t.Fatal("merged histogram differs from one that saw every value")
	}
}

func TestHistogramBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for range 500 {
		var h Histogram
		for range rng.IntN(500) {
			h.AddN(math.Exp(rng.NormFloat64()*6), uint64(1+rng.IntN(1000)))
		}
		h.AddN(0, uint64(rng.IntN(3)))
		b, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Histogram
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		b2, _ := back.MarshalBinary()
		if string(b) != string(b2) || back.Count() != h.Count() {
			t.Fatal("round trip changed the histogram")
		}
		for _, q := range []float64{0.5, 0.99} {
			if back.Quantile(q) != h.Quantile(q) {
				t.Fatal("round trip changed a quantile")
			}
		}
	}
}

func TestHistogramEncodingIsCompact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var h Histogram
	for range 100000 {
		h.Add(math.Exp(rng.NormFloat64()*0.8 + math.Log(40)))
	}
	b, _ := h.MarshalBinary()
	if len(b) > 200 {
		t.Fatalf("an hour of latencies encodes to %d bytes", len(b))
	}
	t.Logf("100,000 latencies: %d buckets' worth in %d bytes", len(h.counts), len(b))
}

func FuzzHistogramUnmarshal(f *testing.F) {
	var h Histogram
	for _, v := range []float64{0, 0.3, 1, 40, 41, 5000} {
		h.Add(v)
	}
	b, _ := h.MarshalBinary()
	f.Add(b)
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Histogram
		if err := h.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrCorruptCell) {
				t.Fatalf("error %v is not ErrCorruptCell", err)
			}
			return
		}
		_ = h.Quantile(0.99)
		again, _ := h.MarshalBinary()
		var h2 Histogram
		if err := h2.UnmarshalBinary(again); err != nil || h2.Count() != h.Count() {
			t.Fatalf("re-encoding failed: %v", err)
		}
	})
}

func BenchmarkHistogramAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(6, 6))
	values := make([]float64, 4096)
	for i := range values {
		values[i] = math.Exp(rng.NormFloat64()*0.8 + math.Log(40))
	}
	var h Histogram
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Add(values[i&4095])
		i++
	}
}

func BenchmarkHistogramQuantile(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 7))
	var h Histogram
	for range 100000 {
		h.Add(math.Exp(rng.NormFloat64()*0.8 + math.Log(40)))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Quantile(0.99)
	}
}
