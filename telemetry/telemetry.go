// Package telemetry exposes apiwarden's own health in the Prometheus text
// format: decisions by code, route and tier, request and upstream latency,
// and the counters every component keeps (limiter, Redis, metrics writer,
// data file, alerts), read at scrape time. The request path pays one
// lock-free map lookup and a few atomic adds per request.
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
	// changed, when a new label set appears (rarely: entries, codes,
	// routes and tiers are few), so the request path reads it without a
	// lock.
	instruments atomic.Pointer[instrumentMap]
	mu          sync.Mutex // serialises replacements
}

type instrumentMap struct {
	// byRequest holds what one request counts in, by all its labels, so
	// a request costs one lookup (docs/BENCHMARKS.md, "Per-request costs
	// outside the edge, third pass").
	byRequest map[requestLabels]requestInstruments
	byEntry   map[string]*durationHistogram // for scrapes
}

// requestLabels are the labels of a request: its entry point's for the
// latency histogram, the others for the decision counter.
type requestLabels struct{ entry, code, route, tier string }

// requestInstruments are the decision counter's child and the latency
// histogram of one set of requestLabels.
type requestInstruments struct {
	decisions prometheus.Counter
	latency   *durationHistogram
}

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
	t.instruments.Store(&instrumentMap{byRequest: map[requestLabels]requestInstruments{}, byEntry: map[string]*durationHistogram{}})
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
// "authorize" or "check"; upstream is 0 when no upstream was called. It
// is safe for concurrent use.
func (t *Telemetry) ObserveRequest(entry, code, route, tier string, latency, upstream time.Duration) {
	labels := requestLabels{entry, code, route, tier}
	in, ok := t.instruments.Load().byRequest[labels]
	if !ok {
		in = t.add(labels)
	}
	in.decisions.Inc()
	in.latency.Observe(latency)
	if upstream > 0 {
		t.upstreams.Observe(upstream)
	}
}

// add makes the instruments of a new label set and publishes a copy of
// the maps that hold them.
func (t *Telemetry) add(labels requestLabels) requestInstruments {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.instruments.Load()
	if in, ok := old.byRequest[labels]; ok {
		return in
	}
	next := &instrumentMap{byRequest: maps.Clone(old.byRequest), byEntry: old.byEntry}
	h, ok := old.byEntry[labels.entry]
	if !ok {
		h = newDurationHistogram()
		next.byEntry = maps.Clone(old.byEntry)
		next.byEntry[labels.entry] = h
	}
	in := requestInstruments{decisions: t.decisions.WithLabelValues(labels.code, labels.route, labels.tier), latency: h}
	next.byRequest[labels] = in
	t.instruments.Store(next)
	return in
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
