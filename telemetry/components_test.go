package telemetry

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Without [redis] url the Redis collector says "not configured" rather
// than "down": enabled 0, zero counters, no redis_healthy series.
func TestRedisCollectorWithoutRedis(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Redis(nil))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"apiwarden_redis_enabled":         "1 when [redis] url is set and limits are meant to be shared.",
		"apiwarden_redis_fallbacks_total": "Decisions made by local buckets because Redis was unreachable.",
		"apiwarden_redis_failures_total":  "Redis calls that failed or timed out.",
	}
	for _, f := range families {
		help, ok := want[f.GetName()]
		if !ok {
			t.Errorf("unexpected family %s", f.GetName())
			continue
		}
		delete(want, f.GetName())
		if f.GetHelp() != help {
			t.Errorf("%s help %q, want %q", f.GetName(), f.GetHelp(), help)
		}
		m := f.GetMetric()[0]
		if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); len(f.GetMetric()) != 1 || v != 0 {
			t.Errorf("%s = %v, want one series at 0", f.GetName(), f.GetMetric())
		}
	}
	for name := range want {
		t.Errorf("missing family %s", name)
	}
}
