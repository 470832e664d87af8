package analytics

import (
	"math"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// Stats is what every analytics answer says about a set of requests; its
// JSON is the "Stats" object of docs/API.md. ErrorRate is 5xx / requests
// everywhere (the dashboard's error rate and the error_spike alert agree).
// Latencies are milliseconds, percentiles read from a merged
// metrics.Histogram (within metrics.HistogramRelativeError).
type Stats struct {
	Requests     uint64  `json:"requests"`
	Errors4xx    uint64  `json:"errors_4xx"`
	Errors5xx    uint64  `json:"errors_5xx"`
	ErrorRate    float64 `json:"error_rate"`
	RateLimited  uint64  `json:"rate_limited"`
	AuthFailures uint64  `json:"auth_failures"`
	// UniqueKeys is the number of distinct key ids; nil (left out of the
	// JSON) where it is not computed.
	UniqueKeys *uint64 `json:"unique_keys,omitempty"`
	BytesIn    uint64  `json:"bytes_in"`
	BytesOut   uint64  `json:"bytes_out"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P95MS      float64 `json:"p95_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	AvgMS      float64 `json:"avg_ms"`
}

// StatsOf summarises a rollup cell (or a merge of several).
func StatsOf(c *metrics.Cell) Stats {
	if c.Count == 0 {
		return Stats{}
	}
	return Stats{
		Requests:     c.Count,
		Errors4xx:    c.Status4xx,
		Errors5xx:    c.Status5xx,
		ErrorRate:    c.ErrorRate(),
		RateLimited:  c.RateLimited,
		AuthFailures: c.AuthFailures,
		BytesIn:      c.BytesIn,
		BytesOut:     c.BytesOut,
		P50MS:        millis(c.LatencyQuantile(0.50)),
		P90MS:        millis(c.LatencyQuantile(0.90)),
		P95MS:        millis(c.LatencyQuantile(0.95)),
		P99MS:        millis(c.LatencyQuantile(0.99)),
		MaxMS:        millis(c.LatencyMax),
		AvgMS:        millis(c.MeanLatency()),
	}
}

// millis is d in milliseconds rounded to the microsecond, so answers do
// not carry the histogram's binary fractions.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

func ptr[T any](v T) *T { return &v }
