package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Histogram constants.
const (
	// HistogramScale is the resolution: each power of two is split into
	// 2^HistogramScale = 8 buckets, as OpenTelemetry's exponential histogram
	// at scale 3 and Prometheus native histograms at schema 3.
	HistogramScale = 3
	// HistogramRelativeError bounds the relative error of Quantile against
	// the exact nearest-rank quantile: a bucket spans a factor 2^(1/8) and
	// Quantile answers its geometric middle, so it is off by at most a factor
	// 2^(1/16), about 4.4%.
	HistogramRelativeError = 0.04427378242741384 // 2^(1/16) - 1

	// minBucketIndex and maxBucketIndex bound the buckets so a histogram
	// never needs more than 641 of them: values at or below 2^-32 count as
	// zero and values above 2^48 land in the top bucket. For latencies in
	// milliseconds that is below a picosecond and above 8,900 years.
	minBucketIndex = -32 << HistogramScale
	maxBucketIndex = 48 << HistogramScale
	bucketsPerOct  = 1 << HistogramScale
)

// bucketTable[k] = 2^(k/8): the upper bounds of the buckets within one
// power of two, shared by Add and the bounds so both agree exactly.
var bucketTable = func() (t [bucketsPerOct + 1]float64) {
	for k := range t {
		t[k] = math.Exp2(float64(k) / bucketsPerOct)
	}
	return t
}()

// Histogram is a mergeable histogram of positive values with base-2
// exponential buckets at scale 3: bucket i holds values in
// (2^((i-1)/8), 2^(i/8)], so bucket index = ceil(log2(v) * 8), as
// OpenTelemetry exponential histograms and Prometheus native histograms lay
// them out. Values ≤ 0 go to a separate zero bucket.
//
// Merging two histograms adds their buckets, so percentiles over any set of
// cells are read from the merged histogram, never averaged. Quantile is
// within HistogramRelativeError of the exact value.
//
// The zero value is an empty histogram ready to use. A Histogram is not safe
// for concurrent use. The metrics package fills latency histograms in
// milliseconds.
type Histogram struct {
	zero   uint64   // values ≤ 0
	count  uint64   // all values, zero bucket included
	offset int32    // bucket index of counts[0]
	counts []uint64 // dense from offset; trimmed of zero ends by encoding only
}

// BucketIndex returns the index of the bucket v falls in; v must be > 0.
func BucketIndex(v float64) int {
	if v > math.MaxFloat64 { // +Inf
		return maxBucketIndex
	}
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	m, e := frac*2, exp-1      // v = m * 2^e, m in [1, 2)
	k := 0
	for m > bucketTable[k] {
		k++
	}
	i := e*bucketsPerOct + k
	return min(max(i, minBucketIndex-1), maxBucketIndex)
}

// BucketBounds returns the range (lower, upper] of bucket i.
func BucketBounds(i int) (lower, upper float64) {
	return bucketUpper(i - 1), bucketUpper(i)
}

func bucketUpper(i int) float64 {
	e := i >> HistogramScale // floor division, also for negative i
	k := i - e<<HistogramScale
	return math.Ldexp(bucketTable[k], e)
}

// Add counts one value. NaN is ignored; +Inf counts in the top bucket.
func (h *Histogram) Add(v float64) { h.AddN(v, 1) }

// AddN counts the value v n times.
func (h *Histogram) AddN(v float64, n uint64) {
	if n == 0 || v != v {
		return
	}
	h.count += n
	if v <= 0 {
		h.zero += n
		return
	}
	i := BucketIndex(v)
	if i < minBucketIndex {
		h.zero += n
		return
	}
	h.grow(i, i)
	h.counts[i-int(h.offset)] += n
}

// grow makes counts cover the indexes lo..hi.
func (h *Histogram) grow(lo, hi int) {
	if len(h.counts) == 0 {
		h.offset = int32(lo)
		h.counts = append(h.counts[:0], make([]uint64, hi-lo+1)...)
		return
	}
	start, end := int(h.offset), int(h.offset)+len(h.counts)-1
	if lo >= start && hi <= end {
		return
	}
	// Leave some headroom on the side that grows, so a histogram that
	// fills in value by value does not copy on every new bucket.
	newStart, newEnd := min(start, lo), max(end, hi)
	if newStart < start {
		newStart = max(newStart-8, minBucketIndex)
	}
	if newEnd > end {
		newEnd = min(newEnd+8, maxBucketIndex)
	}
	n := newEnd - newStart + 1
	shift := start - newStart
	if cap(h.counts) >= n {
		// Room enough: slide the counts up in place (copy handles the
		// overlap) and zero what is new.
		old := len(h.counts)
		h.counts = h.counts[:n]
		if shift > 0 {
			copy(h.counts[shift:], h.counts[:old])
			clear(h.counts[:shift])
		}
		clear(h.counts[shift+old:])
		h.offset = int32(newStart)
		return
	}
	grown := make([]uint64, n, n+16)
	copy(grown[shift:], h.counts)
	h.counts = grown
	h.offset = int32(newStart)
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.count == 0 {
		return
	}
	h.count += o.count
	h.zero += o.zero
	lo, hi, ok := o.span()
	if !ok {
		return
	}
	h.grow(lo, hi)
	base := int(h.offset)
	for i := lo; i <= hi; i++ {
		h.counts[i-base] += o.counts[i-int(o.offset)]
	}
}

// span returns the lowest and highest non-empty bucket.
func (h *Histogram) span() (lo, hi int, ok bool) {
	first, last := -1, -1
	for j, c := range h.counts {
		if c != 0 {
			if first < 0 {
				first = j
			}
			last = j
		}
	}
	if first < 0 {
		return 0, 0, false
	}
	return int(h.offset) + first, int(h.offset) + last, true
}

// Clone returns a copy of h that shares no memory with it.
func (h *Histogram) Clone() Histogram {
	c := *h
	c.counts = slices.Clone(h.counts)
	return c
}

// Count returns the number of values added, zero bucket included.
func (h *Histogram) Count() uint64 { return h.count }

// ZeroCount returns the number of values ≤ 0.
func (h *Histogram) ZeroCount() uint64 { return h.zero }

// Reset empties h, keeping its memory.
func (h *Histogram) Reset() {
	h.zero, h.count = 0, 0
	clear(h.counts)
	h.counts = h.counts[:0]
	h.offset = 0
}

// Buckets calls fn for every non-empty bucket in increasing order with the
// bucket's index and count (the zero bucket is not included; see ZeroCount).
func (h *Histogram) Buckets(fn func(index int, count uint64)) {
	for j, c := range h.counts {
		if c != 0 {
			fn(int(h.offset)+j, c)
		}
	}
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) by the nearest-rank rule: the
// value of rank ceil(q·n) in sorted order, answered as the geometric middle
// of its bucket, so within HistogramRelativeError of the exact value. It
// returns 0 for an empty histogram and when the rank falls in the zero
// bucket.
func (h *Histogram) Quantile(q float64) float64 {
	if h.count == 0 || q != q {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = min(max(rank, 1), h.count)
	if rank <= h.zero {
		return 0
	}
	seen := h.zero
	for j, c := range h.counts {
		seen += c
		if seen >= rank {
			i := int(h.offset) + j
			lower, upper := BucketBounds(i)
			return math.Sqrt(lower * upper)
		}
	}
	return 0 // unreachable while count matches the buckets
}

// MarshalBinary encodes h sparsely: the zero count, then runs of adjacent
// buckets as (gap from the previous run, length, counts), all varints. A
// latency histogram of a busy hour takes 60 to 150 bytes.
func (h *Histogram) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(nil)
}

// AppendBinary appends the MarshalBinary encoding of h to b.
func (h *Histogram) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, h.zero)
	lo, hi, ok := h.span()
	if !ok {
		return binary.AppendUvarint(b, 0), nil
	}
	// Runs break at two or more empty buckets; a single empty bucket costs
	// one byte inside a run, less than starting a new run.
	type run struct{ start, end int } // bucket indexes, inclusive
	var runsBuf [16]run
	runs := runsBuf[:0]
	cur := run{lo, lo}
	for i := lo + 1; i <= hi; i++ {
		if h.counts[i-int(h.offset)] == 0 {
			continue
		}
		if i-cur.end > 2 {
			runs = append(runs, cur)
			cur = run{i, i}
			continue
		}
		cur.end = i
	}
	runs = append(runs, cur)
	b = binary.AppendUvarint(b, uint64(len(runs)))
	prevEnd := 0
	for n, r := range runs {
		if n == 0 {
			b = binary.AppendVarint(b, int64(r.start))
		} else {
			b = binary.AppendUvarint(b, uint64(r.start-prevEnd))
		}
		b = binary.AppendUvarint(b, uint64(r.end-r.start+1))
		for i := r.start; i <= r.end; i++ {
			b = binary.AppendUvarint(b, h.counts[i-int(h.offset)])
		}
		prevEnd = r.end
	}
	return b, nil
}

// UnmarshalBinary replaces h with the histogram encoded in b. It returns
// ErrCorruptCell for anything MarshalBinary could not have written.
func (h *Histogram) UnmarshalBinary(b []byte) error {
	rest, err := h.decode(b)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after histogram", ErrCorruptCell, len(rest))
	}
	return nil
}

// decode reads one histogram from the front of b and returns the rest.
func (h *Histogram) decode(b []byte) ([]byte, error) {
	h.Reset()
	r := byteReader{b: b}
	h.zero = r.uvarint()
	h.count = h.zero
	nruns := r.uvarint()
	if r.err != nil {
		return nil, fmt.Errorf("%w: histogram header: %v", ErrCorruptCell, r.err)
	}
	if nruns > maxBucketIndex-minBucketIndex+1 {
		return nil, fmt.Errorf("%w: histogram has %d runs", ErrCorruptCell, nruns)
	}
	prevEnd := 0
	for n := range int(nruns) {
		var start int
		if n == 0 {
			s := r.varint()
			if s < minBucketIndex || s > maxBucketIndex {
				return nil, fmt.Errorf("%w: histogram bucket %d out of range", ErrCorruptCell, s)
			}
			start = int(s)
		} else {
			gap := r.uvarint()
			if gap < 1 || gap > maxBucketIndex-minBucketIndex {
				return nil, fmt.Errorf("%w: histogram gap %d", ErrCorruptCell, gap)
			}
			start = prevEnd + int(gap)
		}
		length := r.uvarint()
		if r.err != nil {
			return nil, fmt.Errorf("%w: histogram run: %v", ErrCorruptCell, r.err)
		}
		if length == 0 || length > maxBucketIndex-minBucketIndex+1 || start+int(length)-1 > maxBucketIndex {
			return nil, fmt.Errorf("%w: histogram run of %d buckets at %d", ErrCorruptCell, length, start)
		}
		end := start + int(length) - 1
		h.grow(start, end)
		for i := start; i <= end; i++ {
			c := r.uvarint()
			var carry uint64
			h.count, carry = bits.Add64(h.count, c, 0)
			if carry != 0 {
				return nil, fmt.Errorf("%w: histogram count overflows", ErrCorruptCell)
			}
			h.counts[i-int(h.offset)] = c
		}
		if r.err != nil {
			return nil, fmt.Errorf("%w: histogram counts: %v", ErrCorruptCell, r.err)
		}
		prevEnd = end
	}
	return r.b, nil
}

// byteReader reads varints from a byte slice and remembers the first error,
// so decoders check once per section instead of after every number.
type byteReader struct {
	b   []byte
	err error
}

// uvarint reads an unsigned varint. Most numbers in a block's rows fit
// one byte, so that case skips binary.Uvarint's loop (an error leaves r.b
// empty, so it cannot return data past one).
func (r *byteReader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 {
		v := r.b[0]
		r.b = r.b[1:]
		return uint64(v)
	}
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShortVarint
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShortVarint
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errShortVarint
		r.b = nil
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns the next n bytes (a subslice of the input).
func (r *byteReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errShortVarint
		r.b = nil
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

var errShortVarint = errors.New("truncated or overlong number")
