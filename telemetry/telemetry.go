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
	latency   *prometheus.Desc // apiwarden_request_duration_seconds, by entry
	upstream  *prometheus.Desc // apiwarden_upstream_duration_seconds
	upstreams *durationHistogram

	// instruments maps label sets to their children. It is replaced, not
	// changed, when a new label set appears (rarely: codes, routes and
	// tiers are few), so the request path reads it without a lock.
	instruments atomic.Pointer[instrumentMap]
	mu          sync.Mutex // serialises replacements
}

type instrumentMap struct {
	counter map[decisionLabels]prometheus.Counter
	byEntry map[string]*durationHistogram
}

type decisionLabels struct{ code, route, tier string }

// New builds the registry with the Go runtime and process collectors, the
// request instruments and a collector for each source.
func New(sources ...prometheus.Collector) *Telemetry {
	t := &Telemetry{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiwarden_decisions_total",
			Help: "Requests decided, by decision code (VALID, RATE_LIMITED, ...), matched route pattern and tier.",
		}, []string{"code", "route", "tier"}),
		latency: prometheus.NewDesc("apiwarden_request_duration_seconds",
			"Time from request to response as apiwarden saw it, by entry point (proxy, authorize, check).", []string{"entry"}, nil),
		upstream: prometheus.NewDesc("apiwarden_upstream_duration_seconds",
			"Time the upstream took to send its response headers (proxy mode).", nil, nil),
		upstreams: newDurationHistogram(),
	}
	t.instruments.Store(&instrumentMap{counter: map[decisionLabels]prometheus.Counter{}, byEntry: map[string]*durationHistogram{}})
	t.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		t.decisions, latencyCollector{t},
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
	o.Observe(latency)
	if upstream > 0 {
		t.upstreams.Observe(upstream)
	}
}

// add makes the children of a new label set and publishes a copy of the
// map that holds them.
func (t *Telemetry) add(key decisionLabels, entry string) (prometheus.Counter, *durationHistogram) {
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
		o = newDurationHistogram()
		next.byEntry[entry] = o
	}
	t.instruments.Store(next)
	return c, o
}

// latencyCollector reports the latency histograms at scrape time.
type latencyCollector struct{ t *Telemetry }

func (c latencyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.t.latency
	ch <- c.t.upstream
}

func (c latencyCollector) Collect(ch chan<- prometheus.Metric) {
	for entry, h := range c.t.instruments.Load().byEntry {
		ch <- h.metric(c.t.latency, entry)
	}
	ch <- c.t.upstreams.metric(c.t.upstream)
}

// Handler serves the registry in the Prometheus text format.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the underlying registry, for tests and embedding.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }
