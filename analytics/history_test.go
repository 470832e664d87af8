package analytics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
)

// TestHoursPassesEveryRollupInRange reads the hourly rollups the alert
// baselines need from a real bbolt file: every subject's hours inside
// [from, to), none outside, one subject's hours one after another.
func TestHoursPassesEveryRollupInRange(t *testing.T) {
	h0 := testNow.Truncate(time.Hour).Add(-5 * time.Hour)
	var recs []metrics.Record
	add := func(hour int, key, owner, route string, n int, latency time.Duration) {
		for i := range n {
			recs = append(recs, metrics.Record{Time: h0.Add(time.Duration(hour)*time.Hour + time.Duration(i)*time.Second),
				Method: "GET", Route: route, Status: 200, Latency: latency, KeyID: key, OwnerID: owner, Tier: "free"})
		}
	}
	add(0, "key_a", "org_1", "/api/forms", 3, 10*time.Millisecond) // before the range
	add(1, "key_a", "org_1", "/api/forms", 4, 10*time.Millisecond)
	add(1, "key_b", "org_1", "/api/guests", 2, 40*time.Millisecond)
	add(3, "key_a", "org_1", "/api/forms", 5, 20*time.Millisecond)
	add(4, "key_b", "org_2", "/api/guests", 6, 30*time.Millisecond) // at to: outside
	svc := newTestService(t, recs, analytics.Options{})

	type row struct {
		subject  string
		hour     int
		requests int64
	}
	read := func(kind alerting.SubjectKind) []row {
		var rows []row
		hours := []time.Time{h0.Add(time.Hour), h0.Add(2 * time.Hour), h0.Add(3 * time.Hour)}
		err := svc.Hours(kind, hours, func(s string, at time.Time, st alerting.HourStat) {
			if st.P95 <= 0 {
				t.Errorf("%s %s %s: no p95", kind, s, at)
			}
			rows = append(rows, row{s, int(at.Sub(h0) / time.Hour), st.Requests})
		})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	for kind, want := range map[alerting.SubjectKind][]row{
		alerting.SubjectKey:    {{"key_a", 1, 4}, {"key_a", 3, 5}, {"key_b", 1, 2}},
		alerting.SubjectOwner:  {{"org_1", 1, 6}, {"org_1", 3, 5}},
		alerting.SubjectRoute:  {{"/api/forms", 1, 4}, {"/api/forms", 3, 5}, {"/api/guests", 1, 2}},
		alerting.SubjectGlobal: {{"", 1, 6}, {"", 3, 5}},
	} {
		got := read(kind)
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", kind, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", kind, got, want)
				break
			}
		}
	}
	err := svc.Hours("planet", []time.Time{h0}, func(string, time.Time, alerting.HourStat) {})
	if err == nil {
		t.Error("an unknown kind was read")
	}
	if err := svc.Hours(alerting.SubjectKey, []time.Time{h0.Add(time.Hour), h0}, func(string, time.Time, alerting.HourStat) {}); !errors.Is(err, metrics.ErrBadQuery) {
		t.Errorf("hours out of order: %v", err)
	}
}
