package alerting

import (
	"math"
	"testing"
	"time"
)

func TestSeasonalBaseline(t *testing.T) {
	b, ok := seasonalBaseline([]float64{100, 110, 90, 1000}) // one past incident
	if !ok || b.method != methodSeasonal || b.samples != 4 {
		t.Fatalf("baseline %+v ok %v", b, ok)
	}
	if b.median != 105 {
		t.Errorf("median %g, want 105: the incident must not move it", b.median)
	}
	// deviations 5, 5, 15, 895 → MAD 10
	if b.mad != 10 {
		t.Errorf("MAD %g, want 10", b.mad)
	}
	if _, ok := seasonalBaseline([]float64{100, 110}); ok {
		t.Error("two weeks of history should not make a seasonal baseline")
	}
}

func TestScoreFloorsZeroMAD(t *testing.T) {
	b := baseline{median: 1000, mad: 0}
	got := b.score(1100)
	// floor = max(1, 1000/10) = 100; 100 / (1.4826·100)
	want := 100 / (1.4826 * 100)
	if math.Abs(got-want) > 1e-9 || math.IsInf(got, 0) {
		t.Fatalf("score %g, want %g", got, want)
	}
	if s := (baseline{}).score(3); math.IsInf(s, 0) || math.IsNaN(s) {
		t.Fatalf("empty baseline gave %g", s)
	}
}

func TestEWMABaseline(t *testing.T) {
	if _, ok := ewmaBaseline([]float64{5, 6}); ok {
		t.Fatal("two hours should not make a baseline")
	}
	b, ok := ewmaBaseline([]float64{100, 100, 100, 100})
	if !ok || b.median != 100 || b.mad != 0 || b.method != methodEWMA {
		t.Fatalf("steady series: %+v", b)
	}
	b, _ = ewmaBaseline([]float64{100, 200, 100, 200, 100, 200})
	if b.median < 100 || b.median > 200 || b.mad <= 0 {
		t.Fatalf("alternating series: %+v", b)
	}
}

type mapHistory map[time.Time]map[string]HourStat

func (h mapHistory) Hours(_ SubjectKind, hours []time.Time, fn func(string, time.Time, HourStat)) error {
	for _, at := range hours {
		for subject, st := range h[at] {
			fn(subject, at, st)
		}
	}
	return nil
}

func TestBuildBaselinesChoosesMethod(t *testing.T) {
	hour := time.Date(2026, 6, 6, 15, 0, 0, 0, time.UTC)
	h := mapHistory{}
	put := func(at time.Time, subject string, n int64, p95 time.Duration) {
		if h[at] == nil {
			h[at] = map[string]HourStat{}
		}
		h[at][subject] = HourStat{Requests: n, P95: p95}
	}
	for w := 1; w <= 4; w++ {
		put(hour.Add(-time.Duration(w)*7*24*time.Hour), "old", int64(100+w), 0)
	}
	for i := 1; i <= 5; i++ { // "new" was first seen five hours ago
		put(hour.Add(-time.Duration(i)*time.Hour), "new", 50, time.Duration(i)*100*time.Millisecond)
	}
	put(hour.Add(-time.Hour), "newest", 10, 0) // one hour: no baseline

	b, err := buildBaselines(h, SubjectKey, hour)
	if err != nil {
		t.Fatal(err)
	}
	get := func(s string) (baseline, bool) {
		i, ok := b.index[s]
		if !ok {
			return baseline{}, false
		}
		return b.entries[i].b, true
	}
	if old, ok := get("old"); !ok || old.method != methodSeasonal || old.median != 102.5 {
		t.Errorf("old: %+v %v", old, ok)
	}
	if nb, ok := get("new"); !ok || nb.method != methodEWMA || nb.median != 50 {
		t.Errorf("new: %+v %v", nb, ok)
	}
	if _, ok := get("newest"); ok {
		t.Error("a subject with one hour of history got a baseline")
	}
	if got := b.p95["new"]; got != 300*time.Millisecond {
		t.Errorf("p95 baseline %s, want the median 300ms", got)
	}
}
