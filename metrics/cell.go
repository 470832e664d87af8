package metrics

import (
	"fmt"
	"time"
)

// Cell is one rollup cell: everything the analytics need about the
// requests of one dimension value in one hour or day. Cells are exact even
// when raw records are sampled, and they merge: the cell of a week is the
// Merge of its days, and its percentiles come from the merged Latency
// histogram.
//
// Copying a Cell by assignment shares its histogram's memory; use Clone for
// an independent copy.
type Cell struct {
	Count        uint64 // requests
	Status2xx    uint64 // responses by status class (1xx only in Count)
	Status3xx    uint64
	Status4xx    uint64
	Status5xx    uint64
	RateLimited  uint64 // refused by a limit or quota (Record.IsRateLimited)
	AuthFailures uint64 // refused for the key or identity (Record.IsAuthFailure)
	BytesIn      uint64 // request bytes
	BytesOut     uint64 // response bytes

	LatencySum time.Duration // for the mean
	LatencyMin time.Duration // 0 when Count is 0
	LatencyMax time.Duration

	// Latency holds every request's latency in milliseconds.
	Latency Histogram
}

// observation is what a cell takes from a record, worked out once per
// record and added to every cell the record touches.
type observation struct {
	class       int // status class 1..5, 0 if out of range
	rateLimited bool
	authFailure bool
	bytesIn     uint64
	bytesOut    uint64
	latency     time.Duration
	bucket      int // histogram bucket of the latency in ms; below minBucketIndex for the zero bucket
}

func observe(rec *Record) observation {
	o := observation{
		class:       rec.StatusClass(),
		rateLimited: rec.IsRateLimited(),
		authFailure: rec.IsAuthFailure(),
		bytesIn:     uint64(max(rec.RequestBytes, 0)),
		bytesOut:    uint64(max(rec.ResponseBytes, 0)),
		latency:     max(rec.Latency, 0),
		bucket:      minBucketIndex - 1,
	}
	if ms := latencyMillis(o.latency); ms > 0 {
		o.bucket = BucketIndex(ms)
	}
	return o
}

func latencyMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Add counts one record in c.
func (c *Cell) Add(rec *Record) {
	o := observe(rec)
	c.add(&o)
}

func (c *Cell) add(o *observation) {
	if c.Count == 0 || o.latency < c.LatencyMin {
		c.LatencyMin = o.latency
	}
	c.LatencyMax = max(c.LatencyMax, o.latency)
	c.Count++
	switch o.class {
	case 2:
		c.Status2xx++
	case 3:
		c.Status3xx++
	case 4:
		c.Status4xx++
	case 5:
		c.Status5xx++
	}
	if o.rateLimited {
		c.RateLimited++
	}
	if o.authFailure {
		c.AuthFailures++
	}
	c.BytesIn += o.bytesIn
	c.BytesOut += o.bytesOut
	c.LatencySum += o.latency
	h := &c.Latency
	h.count++
	if o.bucket < minBucketIndex {
		h.zero++
		return
	}
	h.grow(o.bucket, o.bucket)
	h.counts[o.bucket-int(h.offset)]++
}

// Merge adds o into c.
func (c *Cell) Merge(o *Cell) {
	if o.Count == 0 {
		return
	}
	if c.Count == 0 || o.LatencyMin < c.LatencyMin {
		c.LatencyMin = o.LatencyMin
	}
	c.LatencyMax = max(c.LatencyMax, o.LatencyMax)
	c.Count += o.Count
	c.Status2xx += o.Status2xx
	c.Status3xx += o.Status3xx
	c.Status4xx += o.Status4xx
	c.Status5xx += o.Status5xx
	c.RateLimited += o.RateLimited
	c.AuthFailures += o.AuthFailures
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	c.LatencySum += o.LatencySum
	c.Latency.Merge(&o.Latency)
}

// Reset empties c, keeping its histogram's memory.
func (c *Cell) Reset() {
	h := c.Latency
	h.Reset()
	*c = Cell{Latency: h}
}

// Clone returns a copy of c that shares no memory with it.
func (c *Cell) Clone() Cell {
	out := *c
	out.Latency = c.Latency.Clone()
	return out
}

// LatencyQuantile returns the q-quantile of the latency from the histogram
// (within HistogramRelativeError), clamped to [LatencyMin, LatencyMax].
func (c *Cell) LatencyQuantile(q float64) time.Duration {
	if c.Count == 0 {
		return 0
	}
	d := time.Duration(c.Latency.Quantile(q) * float64(time.Millisecond))
	return min(max(d, c.LatencyMin), c.LatencyMax)
}

// MeanLatency returns LatencySum / Count, 0 for an empty cell.
func (c *Cell) MeanLatency() time.Duration {
	if c.Count == 0 {
		return 0
	}
	return c.LatencySum / time.Duration(c.Count)
}

// ErrorRate returns the share of 5xx responses, 0 for an empty cell.
func (c *Cell) ErrorRate() float64 {
	if c.Count == 0 {
		return 0
	}
	return float64(c.Status5xx) / float64(c.Count)
}

// cellVersion is the first byte of an encoded cell.
const cellVersion = 1

// appendBinary encodes c: a version byte, the counters and latency
// figures (microseconds) as uvarints, then the histogram.
func (c *Cell) appendBinary(b []byte) []byte {
	b = append(b, cellVersion)
	for _, v := range [...]uint64{
		c.Count, c.Status2xx, c.Status3xx, c.Status4xx, c.Status5xx,
		c.RateLimited, c.AuthFailures, c.BytesIn, c.BytesOut,
		uint64(c.LatencySum / time.Microsecond), uint64(c.LatencyMin / time.Microsecond),
		uint64(c.LatencyMax / time.Microsecond),
	} {
		b = appendUvarint(b, v)
	}
	b, _ = c.Latency.AppendBinary(b)
	return b
}

// AppendBinary appends c's binary encoding to b. It is the one encoding a
// rollup cell is stored in: in bbolt here and, in cluster mode, in
// PostgreSQL's apiwarden_cells (cluster/migrations/008_cells.up.sql).
// The error is always nil.
func (c *Cell) AppendBinary(b []byte) ([]byte, error) { return c.appendBinary(b), nil }

// UnmarshalBinary replaces c with the cell AppendBinary encoded in b,
// reusing c's histogram memory. It returns ErrCorruptCell for anything
// AppendBinary could not have written.
func (c *Cell) UnmarshalBinary(b []byte) error { return c.decode(b) }

// decode replaces c with the cell encoded in b.
func (c *Cell) decode(b []byte) error {
	if len(b) == 0 || b[0] != cellVersion {
		return fmt.Errorf("%w: unknown cell version", ErrCorruptCell)
	}
	r := byteReader{b: b[1:]}
	var v [12]uint64
	for i := range v {
		v[i] = r.uvarint()
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptCell, r.err)
	}
	const maxMicros = uint64(1<<63-1) / uint64(time.Microsecond)
	if v[9] > maxMicros || v[10] > maxMicros || v[11] > maxMicros {
		return fmt.Errorf("%w: latency out of range", ErrCorruptCell)
	}
	h := c.Latency
	rest, err := h.decode(r.b)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorruptCell, len(rest))
	}
	*c = Cell{
		Count: v[0], Status2xx: v[1], Status3xx: v[2], Status4xx: v[3], Status5xx: v[4],
		RateLimited: v[5], AuthFailures: v[6], BytesIn: v[7], BytesOut: v[8],
		LatencySum: time.Duration(v[9]) * time.Microsecond,
		LatencyMin: time.Duration(v[10]) * time.Microsecond,
		LatencyMax: time.Duration(v[11]) * time.Microsecond,
		Latency:    h,
	}
	return nil
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
