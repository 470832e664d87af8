package alerting

import (
	"fmt"
	"testing"
	"time"
)

// sameHours passes the same rollups for every hour, hour by hour.
type sameHours map[string]HourStat

func (s sameHours) Hours(_ SubjectKind, hours []time.Time, fn func(string, time.Time, HourStat)) error {
	for _, at := range hours {
		for subject, st := range s {
			fn(subject, at, st)
		}
	}
	return nil
}

func benchKeys(n int) sameHours {
	s := sameHours{}
	for i := range n {
		s[fmt.Sprintf("key_%05d", i)] = HourStat{Requests: int64(400 + i%7), P95: 80 * time.Millisecond}
	}
	return s
}

// BenchmarkBuildBaselines is the evaluator's share of one rebuild of the
// key kind with 10,000 keys, with an in-memory source: "full" after a
// start (28 hours read), "hourly" every hour after that (6).
func BenchmarkBuildBaselines(b *testing.B) {
	src := benchKeys(10000)
	hour := time.Date(2026, 6, 6, 15, 0, 0, 0, time.UTC)
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := buildBaselines(src, SubjectKey, hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hourly", func(b *testing.B) {
		kept := newRecentHistory(SubjectKey)
		at := hour
		b.ReportAllocs()
		for b.Loop() {
			at = at.Add(time.Hour)
			if _, err := kept.build(src, at, time.UTC); err != nil {
				b.Fatal(err)
			}
		}
	})
}
