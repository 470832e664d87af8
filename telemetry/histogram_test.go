package telemetry

import (
	"bufio"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrapeLines are the lines of a scrape of reg whose metric name starts
// with one of prefixes, by the part before the value, and their values.
func scrapeLines(t *testing.T, reg *prometheus.Registry, prefixes ...string) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) || strings.HasPrefix(line, "# HELP "+p) || strings.HasPrefix(line, "# TYPE "+p) {
				if strings.HasPrefix(line, "#") {
					out[line] = 0
					break
				}
				i := strings.LastIndexByte(line, ' ')
				v, err := strconv.ParseFloat(line[i+1:], 64)
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				out[line[:i]] = v
				break
			}
		}
	}
	return out
}

// The request and upstream latency histograms read as Prometheus's own
// histograms fed the same durations would: the same families, help,
// buckets (a duration on a bound counts in that bound's bucket), counts
// and sums.
func TestLatencyHistogramsMatchPrometheus(t *testing.T) {
	// The bounds /metrics has always had, written apart from
	// latencyBounds so that a changed bound shows.
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	var durations []time.Duration
	for _, b := range buckets {
		d := time.Duration(math.Round(b * float64(time.Second)))
		durations = append(durations, d-1, d, d+1)
	}
	durations = append(durations, 0, 1, 31*time.Second, time.Hour)

	tel := New()
	ref := prometheus.NewRegistry()
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "apiwarden_request_duration_seconds",
		Help:    "Time from request to response as apiwarden saw it, by entry point (proxy, authorize, check).",
		Buckets: buckets,
	}, []string{"entry"})
	upstream := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "apiwarden_upstream_duration_seconds",
		Help:    "Time the upstream took to send its response headers (proxy mode).",
		Buckets: buckets,
	})
	ref.MustRegister(latency, upstream)
	for i, d := range durations {
		entry := []string{"proxy", "authorize", "check"}[i%3]
		up := time.Duration(0)
		if entry == "proxy" && d > 1 {
			up = d / 2 // 0: no upstream was called, nothing observed
			upstream.Observe(up.Seconds())
		}
		tel.ObserveRequest(entry, "VALID", "/r", "free", d, up)
		latency.WithLabelValues(entry).Observe(d.Seconds())
	}

	names := []string{"apiwarden_request_duration_seconds", "apiwarden_upstream_duration_seconds"}
	got, want := scrapeLines(t, tel.reg, names...), scrapeLines(t, ref, names...)
	if len(got) != len(want) || len(want) < 2*(len(buckets)+4) {
		t.Errorf("%d lines, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if strings.Contains(k, "_sum") && math.Abs(g-w) <= 1e-12*math.Abs(w) {
			continue
		}
		if g != w {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
}
