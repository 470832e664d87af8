package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
)

// startApp runs the whole program in-process on loopback ports.
func startApp(t *testing.T, mutate func(*config.Config)) (*app.App, func()) {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Listen, cfg.Server.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Server.DataDir = t.TempDir()
	cfg.Security.AdminToken = "tok"
	cfg.Security.KeySecret = "telemetry-test-secret-0123"
	cfg.Metrics.FlushInterval = config.Duration(50 * time.Millisecond)
	if mutate != nil {
		mutate(cfg)
	}
	a, err := app.New(cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return a, stop
}

func TestPrometheusMetrics(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	a, _ := startApp(t, func(c *config.Config) {
		c.Proxy.Upstream = up.URL
		c.Routes = []config.Route{{Path: "/public/*", Preset: "public"}}
		c.Security.MetricsToken = "scrape"
	})
	for _, path := range []string{"/public/a", "/public/b", "/private"} {
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if resp, err := http.Get("http://" + a.AdminAddr() + "/metrics"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("/metrics without the metrics token: %v %v", resp.Status, err)
	}
	// The writer flushes within its interval; scrape until it has, rather
	// than sleep a guess that a loaded machine outlasts.
	var families map[string]*dto.MetricFamily
	var flushed float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		families = scrapeMetrics(t, a.AdminAddr(), "scrape")
		flushed = 0
		for _, m := range families["apiwarden_metrics_records_total"].GetMetric() {
			if m.GetLabel()[0].GetValue() == "flushed" {
				flushed = m.GetCounter().GetValue()
			}
		}
		if flushed >= 3 || time.Now().After(deadline) {
			break
		}
	}
	for _, name := range []string{
		"apiwarden_decisions_total", "apiwarden_request_duration_seconds", "apiwarden_upstream_duration_seconds",
		"apiwarden_limiter_subjects", "apiwarden_limiter_evictions_total", "apiwarden_redis_fallbacks_total",
		"apiwarden_metrics_records_total", "apiwarden_metrics_last_flush_seconds", "apiwarden_store_file_bytes",
		"apiwarden_store_read_transactions_total", "apiwarden_alerts", "apiwarden_alert_evaluations_total", "go_goroutines", "process_resident_memory_bytes",
	} {
		if families[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	counts := decisionCounts(families)
	if counts["VALID /public/* free"] != 2 || counts["MISSING_KEY * "] != 1 {
		t.Fatalf("decision counts %v", counts)
	}
	if h := families["apiwarden_upstream_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 2 {
		t.Fatalf("upstream latency observed %d times, want 2", h.GetSampleCount())
	}
	if flushed != 3 {
		t.Fatalf("records flushed %v, want 3", flushed)
	}
}

// decisionCounts sums apiwarden_decisions_total by "code route tier".
func decisionCounts(families map[string]*dto.MetricFamily) map[string]float64 {
	counts := map[string]float64{}
	for _, m := range families["apiwarden_decisions_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		counts[labels["code"]+" "+labels["route"]+" "+labels["tier"]] += m.GetCounter().GetValue()
	}
	return counts
}

// scrapeMetrics reads /metrics with the metrics token and parses it as
// the Prometheus text format.
func scrapeMetrics(t *testing.T, adminAddr, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+adminAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v", err)
	}
	return families
}
