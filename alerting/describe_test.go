package alerting

import (
	"testing"
	"time"
)

// TestDescribeSubjects pins the summaries' wording per subject kind: the
// global subject reads as plain words, never as its internal name.
func TestDescribeSubjects(t *testing.T) {
	global := Subject{Kind: SubjectGlobal}
	key := Subject{Kind: SubjectKey, Value: "key_1"}
	route := Subject{Kind: SubjectRoute, Value: "/api/forms/*"}
	tests := []struct {
		name string
		rule Rule
		obs  observation
		want string
	}{
		{"error spike, global", Rule{Type: ErrorSpike}, observation{subject: global, value: 0.09}, "5xx rate 9% on all traffic"},
		{"error spike, route", Rule{Type: ErrorSpike}, observation{subject: route, value: 0.12}, "5xx rate 12% on route:/api/forms/*"},
		{"rate limited, global", Rule{Type: RateLimitExceeded}, observation{subject: global, value: 0.3}, "30% of all requests rate limited"},
		{"rate limited, named key", Rule{Type: RateLimitExceeded}, observation{subject: key, name: "app", owner: "org_1", value: 0.9},
			`key "app" of org_1 rate limited on 90% of its requests`},
		{"latency, global", Rule{Type: PerformanceDegradation, Threshold: 500}, observation{subject: global, p95: 750 * time.Millisecond},
			"p95 latency 750 ms on all traffic"},
		{"unusual, global", Rule{Type: UnusualActivity}, observation{subject: global, value: 4.25, rate: 900, base: baseline{median: 100}},
			"overall traffic spike (score 4.2)"},
		{"unusual, key drop", Rule{Type: UnusualActivity}, observation{subject: key, value: 3, rate: 1, base: baseline{median: 100}},
			"traffic drop on key:key_1 (score 3.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := describe(&tt.rule, &tt.obs); got != tt.want {
				t.Errorf("summary = %q, want %q", got, tt.want)
			}
		})
	}
}
