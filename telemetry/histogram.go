package telemetry

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// durationHistogram counts durations into the latencyBounds, as a
// Prometheus histogram does, for a request path that observes two of them
// a request from every core. Prometheus's own takes four atomic updates
// of memory every core shares an observation (count, bucket, a CAS loop on
// the float sum); here an observation adds to a bucket and an integer sum
// in one of several stripes, picked by a hash of the duration (measured
// durations differ down to the nanosecond, so the pick is as good as
// random and costs a multiplication), so two cores rarely update the same
// line at the same moment (a stripe still moves between cores: the choice
// is not per core). A scrape adds the stripes up.
//
// Observe is safe for concurrent use. A scrape that races observations
// may count one in its bucket and not yet in the sum; the count is the
// buckets' total, so counts and buckets always agree.
type durationHistogram struct {
	stripes []histogramStripe
	shift   uint8 // 64 - log2(len(stripes)): stripeOf keeps the hash's top bits
}

// histogramStripe is one stripe: a count per bucket (the last for
// durations past every bound) and the sum in nanoseconds (which wraps
// after 292 years of summed latency), padded to whole cache lines of its
// own.
type histogramStripe struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	sum    atomic.Int64
	_      [64 - (len(latencyBounds)+2)*8%64]byte
}

// latencyBounds are the latency histograms' bucket bounds, from a cached
// decision (well under a millisecond) to a slow upstream (tens of
// seconds): a duration counts in the first bucket whose bound it does not
// exceed, as Prometheus's "le" reads.
var latencyBounds = [...]time.Duration{500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second}

// newDurationHistogram makes a histogram of four stripes a core (at least
// two).
func newDurationHistogram() *durationHistogram {
	n, bits := 2, uint8(1)
	for n < 4*runtime.GOMAXPROCS(0) {
		n, bits = n*2, bits+1
	}
	return &durationHistogram{stripes: make([]histogramStripe, n), shift: 64 - bits}
}

// Observe counts d. It is safe for concurrent use.
func (h *durationHistogram) Observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	s := &h.stripes[h.stripeOf(d)]
	s.counts[i].Add(1)
	s.sum.Add(int64(d))
}

// stripeOf picks d's stripe: the top bits of a Fibonacci hash of d, which
// every bit of d moves.
func (h *durationHistogram) stripeOf(d time.Duration) uint64 {
	return uint64(d) * 0x9e3779b97f4a7c15 >> h.shift
}

// metric is the histogram as a Prometheus metric of desc.
func (h *durationHistogram) metric(desc *prometheus.Desc, labelValues ...string) prometheus.Metric {
	var counts [len(latencyBounds) + 1]uint64
	var sum int64
	for i := range h.stripes {
		s := &h.stripes[i]
		for b := range counts {
			counts[b] += s.counts[b].Load()
		}
		sum += s.sum.Load()
	}
	buckets := make(map[float64]uint64, len(latencyBounds))
	var cumulative uint64
	for b, bound := range latencyBounds {
		cumulative += counts[b]
		buckets[bound.Seconds()] = cumulative
	}
	count := cumulative + counts[len(latencyBounds)]
	return prometheus.MustNewConstHistogram(desc, count, time.Duration(sum).Seconds(), buckets, labelValues...)
}
