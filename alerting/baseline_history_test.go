package alerting

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York without the system's zone files
)

// countingHistory is a mapHistory that counts the hours it is asked for.
type countingHistory struct {
	mapHistory
	hours int
}

func (c *countingHistory) Hours(kind SubjectKind, hours []time.Time, fn func(string, time.Time, HourStat)) error {
	c.hours += len(hours)
	return c.mapHistory.Hours(kind, hours, fn)
}

// sameBaselines fails unless got and want hold the same baseline and p95
// for every subject.
func sameBaselines(t *testing.T, at time.Time, got, want *baselines) {
	t.Helper()
	if len(got.entries) != len(want.entries) || !reflect.DeepEqual(got.p95, want.p95) {
		t.Fatalf("%s: %d baselines, p95 %v; from scratch %d, p95 %v", at, len(got.entries), got.p95, len(want.entries), want.p95)
	}
	for subject, i := range want.index {
		j, ok := got.index[subject]
		if !ok || got.entries[j].b != want.entries[i].b {
			t.Fatalf("%s: %q: %+v (found %v), from scratch %+v", at, subject, got.entries[j].b, ok, want.entries[i].b)
		}
	}
}

// TestRecentHistoryMatchesAFullRebuild walks hour by hour, with jumps and
// a step back, through random history with gaps, subjects that come and
// go, and rollups that grow after they were first read: the kept history
// must give exactly the baselines of reading everything again.
func TestRecentHistoryMatchesAFullRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	hist := mapHistory{}
	for at := start; at.Before(start.AddDate(0, 0, 45)); at = at.Add(time.Hour) {
		for s := range 30 {
			// Subject s exists on some days only, and skips hours.
			if day := int(at.Sub(start).Hours()) / 24; (day+s)%9 == 0 || rng.IntN(4) == 0 {
				continue
			}
			if hist[at] == nil {
				hist[at] = map[string]HourStat{}
			}
			hist[at][fmt.Sprintf("s%02d", s)] = HourStat{Requests: int64(rng.IntN(1000)), P95: time.Duration(rng.IntN(5)) * 10 * time.Millisecond}
		}
	}
	src := &countingHistory{mapHistory: hist}
	kept := newRecentHistory(SubjectKey)
	hour := start.AddDate(0, 0, 29)
	steps := []time.Duration{time.Hour, time.Hour, time.Hour, 3 * time.Hour, time.Hour, 30 * time.Hour, time.Hour, -5 * time.Hour, time.Hour}
	for i := range 200 {
		hour = hour.Add(steps[i%len(steps)])
		// The newest hour was still filling at the last rebuild.
		if prev := hour.Add(-2 * time.Hour); hist[prev] != nil {
			for s, st := range hist[prev] {
				st.Requests += 7
				hist[prev][s] = st
			}
		}
		src.hours = 0
		got, err := kept.build(src, hour, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if steps[i%len(steps)] == time.Hour && i > 0 && src.hours != 2+baselineWeeks {
			t.Fatalf("%s: an hour later %d hours were read, want %d", hour, src.hours, 2+baselineWeeks)
		}
		want, err := buildBaselines(hist, SubjectKey, hour)
		if err != nil {
			t.Fatal(err)
		}
		sameBaselines(t, hour, got, want)
	}
}

// failingHistory fails once, after passing some rows.
type failingHistory struct {
	mapHistory
	fail bool
}

func (f *failingHistory) Hours(kind SubjectKind, hours []time.Time, fn func(string, time.Time, HourStat)) error {
	if err := f.mapHistory.Hours(kind, hours, fn); err != nil || !f.fail {
		return err
	}
	f.fail = false
	return fmt.Errorf("disk on fire")
}

func TestRecentHistoryStartsOverAfterAFailedRead(t *testing.T) {
	hour := time.Date(2026, 6, 6, 15, 0, 0, 0, time.UTC)
	hist := mapHistory{}
	for i := 1; i <= 30; i++ {
		hist[hour.Add(-time.Duration(i)*time.Hour)] = map[string]HourStat{"k": {Requests: int64(10 * i)}}
	}
	src := &failingHistory{mapHistory: hist}
	kept := newRecentHistory(SubjectKey)
	if _, err := kept.build(src, hour.Add(-time.Hour), time.UTC); err != nil {
		t.Fatal(err)
	}
	src.fail = true
	if _, err := kept.build(src, hour, time.UTC); err == nil {
		t.Fatal("the failed read was not reported")
	}
	got, err := kept.build(src, hour, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := buildBaselines(hist, SubjectKey, hour)
	sameBaselines(t, hour, got, want)
}

// TestSameHourWeeksBackFollowsLocalTime: the seasonal samples are the
// same New York wall-clock hour in past weeks, across the 2026 changes
// (clocks forward on 8 March at 2:00, back on 1 November at 2:00).
func TestSameHourWeeksBackFollowsLocalTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		hour    string   // UTC
		want    []string // UTC, weeks 1 to 4; "" for no sample
		crosses bool     // a change lies in the four weeks: UTC weeks are wrong
	}{
		{"winter, no change", "2026-02-10 14:00", []string{"2026-02-03 14:00", "2026-01-27 14:00", "2026-01-20 14:00", "2026-01-13 14:00"}, false},
		{"9:00 EDT the week after spring forward", "2026-03-09 13:00", []string{"2026-03-02 14:00", "2026-02-23 14:00", "2026-02-16 14:00", "2026-02-09 14:00"}, true},
		{"9:00 EDT four weeks later", "2026-04-06 13:00", []string{"2026-03-30 13:00", "2026-03-23 13:00", "2026-03-16 13:00", "2026-03-09 13:00"}, false},
		{"2:00 EDT: skipped the week before", "2026-03-15 06:00", []string{"", "2026-03-01 07:00", "2026-02-22 07:00", "2026-02-15 07:00"}, true},
		{"0:00 EST on the change day, before it", "2026-03-08 05:00", []string{"2026-03-01 05:00", "2026-02-22 05:00", "2026-02-15 05:00", "2026-02-08 05:00"}, false},
		{"9:00 EST the week after fall back", "2026-11-02 14:00", []string{"2026-10-26 13:00", "2026-10-19 13:00", "2026-10-12 13:00", "2026-10-05 13:00"}, true},
		{"1:00 EST, second 1:00 of the change day", "2026-11-01 06:00", []string{"2026-10-25 05:00", "2026-10-18 05:00", "2026-10-11 05:00", "2026-10-04 05:00"}, true},
		{"1:00 EST a week later: the first 1:00", "2026-11-08 06:00", []string{"2026-11-01 05:00", "2026-10-25 05:00", "2026-10-18 05:00", "2026-10-11 05:00"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hour := utc(tt.hour)
			differs := false
			for w := 1; w <= baselineWeeks; w++ {
				got, ok := sameHourWeeksBack(hour, ny, w)
				want := tt.want[w-1]
				switch {
				case want == "" && ok:
					t.Errorf("week %d: %s, want no sample", w, got.Format("2006-01-02 15:04"))
				case want != "" && (!ok || !got.Equal(utc(want))):
					t.Errorf("week %d: %s (%v), want %s", w, got.Format("2006-01-02 15:04"), ok, want)
				}
				if want == "" || !utc(want).Equal(hour.Add(-time.Duration(w)*7*24*time.Hour)) {
					differs = true
				}
				if got, _ := sameHourWeeksBack(hour, time.UTC, w); !got.Equal(hour.Add(-time.Duration(w) * 7 * 24 * time.Hour)) {
					t.Errorf("week %d in UTC: %s", w, got)
				}
			}
			// The rows across a change are the ones the UTC weeks got wrong.
			if differs != tt.crosses {
				t.Errorf("differs from UTC weeks: %v, want %v", differs, tt.crosses)
			}
		})
	}
}
