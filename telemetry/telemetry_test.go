package telemetry_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apiwarden/apiwarden/telemetry"
)

func TestObserveRequestAndSources(t *testing.T) {
	queue := telemetry.NewDesc("queue_length", "Items waiting.")
	tel := telemetry.New(telemetry.Func{
		Families: []*prometheus.Desc{queue},
		Read: func() []telemetry.Reading {
			return []telemetry.Reading{{Desc: queue, Type: prometheus.GaugeValue, Value: 7}}
		},
	})
	for range 3 {
		tel.ObserveRequest("proxy", "VALID", "/api/forms/*", "basic", 2*time.Millisecond, time.Millisecond)
	}
	tel.ObserveRequest("authorize", "RATE_LIMITED", "/api/forms/*", "basic", time.Millisecond, 0)

	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`apiwarden_decisions_total{code="VALID",route="/api/forms/*",tier="basic"} 3`,
		`apiwarden_decisions_total{code="RATE_LIMITED",route="/api/forms/*",tier="basic"} 1`,
		`apiwarden_request_duration_seconds_count{entry="proxy"} 3`,
		`apiwarden_upstream_duration_seconds_count 3`,
		`apiwarden_queue_length 7`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// benchLatency is the i-th of a run of latencies around a millisecond that
// differ down to the nanosecond, as measured ones do.
func benchLatency(i int) time.Duration {
	return 800*time.Microsecond + time.Duration(i%4096)*97
}

// Requests of one code, route and tier through different entry points
// count in one decision counter and in each entry's latency histogram.
func TestObserveRequestEntriesShareDecisionCounter(t *testing.T) {
	tel := telemetry.New()
	tel.ObserveRequest("proxy", "VALID", "/api/forms/*", "basic", 2*time.Millisecond, time.Millisecond)
	tel.ObserveRequest("check", "VALID", "/api/forms/*", "basic", time.Millisecond, 0)
	tel.ObserveRequest("check", "VALID", "/api/forms/*", "basic", time.Millisecond, 0)

	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"apiwarden_decisions_total{code=\"VALID\",route=\"/api/forms/*\",tier=\"basic\"} 3\n",
		"apiwarden_request_duration_seconds_count{entry=\"proxy\"} 1\n",
		"apiwarden_request_duration_seconds_count{entry=\"check\"} 2\n",
		"apiwarden_upstream_duration_seconds_count 1\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if n := strings.Count(body, "apiwarden_decisions_total{"); n != 1 {
		t.Errorf("%d decision series, want 1", n)
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	tel := telemetry.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			tel.ObserveRequest("proxy", "VALID", "/api/forms/*", "basic", benchLatency(i), benchLatency(i+1))
		}
	})
}

func Example() {
	tel := telemetry.New()
	tel.ObserveRequest("check", "VALID", "/api/guests/*", "premium", 300*time.Microsecond, 0)
	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "apiwarden_decisions_total{") {
			fmt.Println(line)
		}
	}
	// Output: apiwarden_decisions_total{code="VALID",route="/api/guests/*",tier="premium"} 1
}

func BenchmarkObserveRequestSerial(b *testing.B) {
	tel := telemetry.New()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		tel.ObserveRequest("proxy", "VALID", "/api/forms/*", "basic", benchLatency(i), benchLatency(i+1))
	}
}
