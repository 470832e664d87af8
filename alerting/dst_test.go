package alerting_test

import (
	"testing"
	"time"
	_ "time/tzdata" // America/New_York without the system's zone files

	"github.com/apiwarden/apiwarden/alerting"
)

// TestUnusualActivityWeeksAreLocal: a key busy at 9:00 New York time
// every day (1,000 requests an hour, 100 otherwise) is compared, the
// Monday after a daylight-saving change, with 9:00 of past weeks, not
// with the UTC hour that was 8:00 (spring) or 10:00 (autumn) then.
func TestUnusualActivityWeeksAreLocal(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	history := fakeHistory(func(kind alerting.SubjectKind, hour time.Time) map[string]alerting.HourStat {
		if kind != alerting.SubjectKey {
			return nil
		}
		n := int64(100)
		if hour.In(ny).Hour() == 9 {
			n = 1000
		}
		return map[string]alerting.HourStat{key1.Value: {Requests: n}}
	})
	rule := alerting.Rule{Name: "unusual", Type: alerting.UnusualActivity, Subject: alerting.SubjectKey,
		Window: 15 * time.Minute, Threshold: 5, MinRequests: 10, Direction: alerting.DirectionBoth,
		Severity: alerting.SeverityMedium}
	tests := []struct {
		name     string
		at       time.Time // a few minutes past 9:00 local
		loc      *time.Location
		perHour  int64
		wantOpen bool
	}{
		{"after spring forward, usual 9:00 traffic", time.Date(2026, 3, 9, 9, 5, 0, 0, ny), ny, 1000, false},
		{"after spring forward, 9:00 traffic gone", time.Date(2026, 3, 9, 9, 5, 0, 0, ny), ny, 100, true},
		{"after fall back, usual 9:00 traffic", time.Date(2026, 11, 2, 9, 5, 0, 0, ny), ny, 1000, false},
		{"after fall back, 9:00 traffic gone", time.Date(2026, 11, 2, 9, 5, 0, 0, ny), ny, 100, true},
		{"mid-summer, usual 9:00 traffic", time.Date(2026, 7, 6, 9, 5, 0, 0, ny), ny, 1000, false},
		// Without a location the weeks are UTC weeks: after the change
		// 9:00 EDT is compared with 8:00 EST and looks like a spike.
		{"after spring forward in UTC weeks", time.Date(2026, 3, 9, 9, 5, 0, 0, ny), nil, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, []alerting.Rule{rule}, func(o *alerting.Options) {
				o.History, o.Location = history, tt.loc
			})
			h.now = tt.at
			h.traffic.set(alerting.SubjectKey, alerting.Aggregate{Subject: key1, Requests: tt.perHour / 4})
			h.steps(3, tick)
			if open := len(h.open()) > 0; open != tt.wantOpen {
				t.Fatalf("open alerts %v, want %v: %+v", open, tt.wantOpen, h.open())
			}
		})
	}
}
