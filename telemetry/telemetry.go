// Package telemetry exposes apiwarden's own health in the Prometheus text
// format: decisions by code, route and tier, request and upstream latency,
// and the counters every component keeps (limiter, Redis, metrics writer,
// data file, alerts), read at scrape time. The request path pays two
// lock-free map lookups and a few atomic adds per request.
package telemetry

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
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

	// instruments maps label sets to their children. It is replaced, not
	// changed, when a new label set appears (rarely: codes, routes and
	// tiers are few), so the request path reads it without a lock.
	instruments atomic.Pointer[instrumentMap]
	mu          sync.Mutex // serialises replacements
}

type instrumentMap struct {
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
	}
	t.instruments.Store(&instrumentMap{counter: map[decisionLabels]prometheus.Counter{}, byEntry: map[string]prometheus.Observer{}})
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
	m := t.instruments.Load()
	c, ok := m.counter[key]
	o, okEntry := m.byEntry[entry]
	if !ok || !okEntry {
		c, o = t.add(key, entry)
	}
	c.Inc()
	o.Observe(latency.Seconds())
	if upstream > 0 {
		t.upstream.Observe(upstream.Seconds())
	}
}

// add makes the children of a new label set and publishes a copy of the
// map that holds them.
func (t *Telemetry) add(key decisionLabels, entry string) (prometheus.Counter, prometheus.Observer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.instruments.Load()
	next := &instrumentMap{counter: maps.Clone(old.counter), byEntry: maps.Clone(old.byEntry)}
	c, ok := next.counter[key]
	if !ok {
		c = t.decisions.WithLabelValues(key.code, key.route, key.tier)
		next.counter[key] = c
	}
	o, ok := next.byEntry[entry]
	if !ok {
		o = t.latency.WithLabelValues(entry)
		next.byEntry[entry] = o
	}
	t.instruments.Store(next)
	return c, o
}

// Handler serves the registry in the Prometheus text format.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the underlying registry, for tests and embedding.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }
