// Package telemetry exposes apiwarden's own health in the Prometheus text
// format: decisions by code, route and tier, request and upstream latency,
// and the counters every component keeps (limiter, Redis, metrics writer,
// data file, alerts), read at scrape time. The request path pays one map
// lookup under a read lock and a few atomic adds per request.
package telemetry

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Telemetry holds the registry and the request-path instruments.
type Telemetry struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	upstream  prometheus.Histogram

	mu      sync.RWMutex
	counter map[decisionLabels]prometheus.Counter
	byEntry map[string]prometheus.Observer
}

type decisionLabels struct{ code, route, tier string }

// latencyBuckets span a cached decision (well under a millisecond) to a
// slow upstream (tens of seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New builds the registry with the Go runtime and process collectors, the
// request instruments and a collector for each source.
func New(sources ...prometheus.Collector) *Telemetry {
	t := &Telemetry{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiwarden_decisions_total",
			Help: "Requests decided, by decision code (VALID, RATE_LIMITED, ...), matched route pattern and tier.",
		}, []string{"code", "route", "tier"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiwarden_request_duration_seconds",
			Help:    "Time from request to response as apiwarden saw it, by entry point (proxy, authorize, check).",
			Buckets: latencyBuckets,
		}, []string{"entry"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "apiwarden_upstream_duration_seconds",
			Help:    "Time the upstream took to send its response headers (proxy mode).",
			Buckets: latencyBuckets,
		}),
		counter: make(map[decisionLabels]prometheus.Counter),
		byEntry: make(map[string]prometheus.Observer),
	}
	t.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		t.decisions, t.latency, t.upstream,
	)
	for _, s := range sources {
		t.reg.MustRegister(s)
	}
	return t
}

// ObserveRequest counts one decided request. entry is "proxy",
// "authorize" or "check"; upstream is 0 when no upstream was called.
func (t *Telemetry) ObserveRequest(entry, code, route, tier string, latency, upstream time.Duration) {
	key := decisionLabels{code, route, tier}
	t.mu.RLock()
	c, ok := t.counter[key]
	o, okEntry := t.byEntry[entry]
	t.mu.RUnlock()
	if !ok || !okEntry {
		t.mu.Lock()
		if c, ok = t.counter[key]; !ok {
			c = t.decisions.WithLabelValues(code, route, tier)
			t.counter[key] = c
		}
		if o, okEntry = t.byEntry[entry]; !okEntry {
			o = t.latency.WithLabelValues(entry)
			t.byEntry[entry] = o
		}
		t.mu.Unlock()
	}
	c.Inc()
	o.Observe(latency.Seconds())
	if upstream > 0 {
		t.upstream.Observe(upstream.Seconds())
	}
}

// Handler serves the registry in the Prometheus text format.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the underlying registry, for tests and embedding.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }
