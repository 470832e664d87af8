package limiter

import (
	"errors"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // the New York tests must not depend on the machine's zoneinfo
)

func newYork(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatalf("time zone database: %v", err)
	}
	return loc
}

// weddingCalendar is the wedding-industry default: a slower peak season for
// the cheap tiers, and Saturdays with more room and louder alerts.
func weddingCalendar(t testing.TB, loc *time.Location) *Calendar {
	t.Helper()
	c, err := NewCalendar(loc, []Rule{
		{Name: "peak-season", Months: []time.Month{5, 6, 7, 8, 9}, Tiers: []string{"free", "basic"}, LimitMultiplier: 0.75},
		{Name: "wedding-day", Weekdays: []time.Weekday{time.Saturday}, LimitMultiplier: 1.5, AlertSeverityBoost: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCalendarRules(t *testing.T) {
	ny := newYork(t)
	c := weddingCalendar(t, ny)
	cases := []struct {
		name   string
		at     time.Time
		tier   string
		mult   float64
		boost  int
		active []string
	}{
		{"May weekday, free", time.Date(2026, 5, 12, 12, 0, 0, 0, ny), "free", 0.75, 0, []string{"peak-season"}},
		{"May weekday, premium", time.Date(2026, 5, 12, 12, 0, 0, 0, ny), "premium", 1, 0, []string{"peak-season"}},
		{"October weekday, free", time.Date(2026, 10, 13, 12, 0, 0, 0, ny), "free", 1, 0, nil},
		{"May Saturday, free", time.Date(2026, 5, 16, 12, 0, 0, 0, ny), "free", 1.125, 1, []string{"peak-season", "wedding-day"}},
		{"May Saturday, premium", time.Date(2026, 5, 16, 12, 0, 0, 0, ny), "premium", 1.5, 1, []string{"peak-season", "wedding-day"}},
		{"Saturday in UTC, still Friday in New York", time.Date(2026, 10, 17, 2, 0, 0, 0, time.UTC), "free", 1, 0, nil},
		{"Sunday in UTC, still Saturday in New York", time.Date(2026, 10, 18, 2, 0, 0, 0, time.UTC), "free", 1.5, 1, []string{"wedding-day"}},
		{"last instant of Saturday", time.Date(2026, 10, 17, 23, 59, 59, 999999999, ny), "free", 1.5, 1, []string{"wedding-day"}},
		{"local midnight ends it", time.Date(2026, 10, 18, 0, 0, 0, 0, ny), "free", 1, 0, nil},
		{"unknown tier takes rules for all tiers", time.Date(2026, 5, 16, 12, 0, 0, 0, ny), "gold", 1.5, 1, []string{"peak-season", "wedding-day"}},
	}
	// In order, so the cached day must be replaced at each change.
	for _, tc := range cases {
		if got := c.Multiplier(tc.at, tc.tier); got != tc.mult {
			t.Errorf("%s: Multiplier = %v, want %v", tc.name, got, tc.mult)
		}
		if got := c.SeverityBoost(tc.at); got != tc.boost {
			t.Errorf("%s: SeverityBoost = %d, want %d", tc.name, got, tc.boost)
		}
		if got := c.Active(tc.at); !slices.Equal(got, tc.active) {
			t.Errorf("%s: Active = %v, want %v", tc.name, got, tc.active)
		}
	}
}

func TestCalendarDSTDay(t *testing.T) {
	ny := newYork(t)
	c, err := NewCalendar(ny, []Rule{{Name: "sunday", Weekdays: []time.Weekday{time.Sunday}, LimitMultiplier: 2}})
	if err != nil {
		t.Fatal(err)
	}
	// 2026-03-08 has 23 hours in New York.
	for _, tc := range []struct {
		at   time.Time
		want float64
	}{
		{time.Date(2026, 3, 7, 23, 59, 0, 0, ny), 1},
		{time.Date(2026, 3, 8, 0, 0, 0, 0, ny), 2},
		{time.Date(2026, 3, 8, 23, 59, 0, 0, ny), 2},
		{time.Date(2026, 3, 9, 0, 0, 0, 0, ny), 1},
	} {
		if got := c.Multiplier(tc.at, "free"); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestDateRanges(t *testing.T) {
	mustRange := func(from, to string) DateRange {
		f, err := ParseDate(from)
		if err != nil {
			t.Fatal(err)
		}
		tt, err := ParseDate(to)
		if err != nil {
			t.Fatal(err)
		}
		return DateRange{From: f, To: tt}
	}
	cases := []struct {
		r    DateRange
		day  string
		want bool
	}{
		{mustRange("2026-06-01", "2026-06-03"), "2026-05-31", false},
		{mustRange("2026-06-01", "2026-06-03"), "2026-06-01", true},
		{mustRange("2026-06-01", "2026-06-03"), "2026-06-03", true},
		{mustRange("2026-06-01", "2026-06-03"), "2026-06-04", false},
		{mustRange("2026-06-01", "2026-06-03"), "2027-06-02", false},
		{mustRange("2026-12-28", "2027-01-02"), "2026-12-31", true},
		{mustRange("2026-12-28", "2027-01-02"), "2027-01-02", true},
		{mustRange("2026-12-28", "2027-01-02"), "2027-12-30", false},
		{mustRange("12-20", "01-05"), "2026-12-19", false},
		{mustRange("12-20", "01-05"), "2026-12-20", true},
		{mustRange("12-20", "01-05"), "2030-01-01", true},
		{mustRange("12-20", "01-05"), "2027-01-05", true},
		{mustRange("12-20", "01-05"), "2027-01-06", false},
		{mustRange("02-14", "02-14"), "2031-02-14", true},
	}
	for _, tc := range cases {
		d, err := ParseDate(tc.day)
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.r.validate(); err != nil {
			t.Fatalf("%v: %v", tc.r, err)
		}
		if got := tc.r.contains(d.Year, d.Month, d.Day); got != tc.want {
			t.Errorf("%s..%s contains %s = %v, want %v", tc.r.From, tc.r.To, tc.day, got, tc.want)
		}
	}
}

func TestRuleConditionsCombine(t *testing.T) {
	// A rule with months, weekdays and dates matches only where all hold:
	// Saturdays in June inside the range.
	june, _ := ParseDate("2026-06-01")
	end, _ := ParseDate("2026-06-20")
	c, err := NewCalendar(time.UTC, []Rule{{
		Name: "june-saturdays", Months: []time.Month{time.June}, Weekdays: []time.Weekday{time.Saturday},
		Dates: []DateRange{{From: june, To: end}}, LimitMultiplier: 3,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		day  string
		want float64
	}{
		{"2026-06-06", 3}, // Saturday in range
		{"2026-06-20", 3}, // Saturday, last day
		{"2026-06-27", 1}, // Saturday after the range
		{"2026-06-08", 1}, // Monday in range
		{"2026-05-30", 1}, // Saturday before
	} {
		d, _ := ParseDate(tc.day)
		at := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)
		if got := c.Multiplier(at, "free"); got != tc.want {
			t.Errorf("%s (%s): %v, want %v", tc.day, at.Weekday(), got, tc.want)
		}
	}
}

func TestRuleValidation(t *testing.T) {
	feb30 := Date{Year: 2026, Month: 2, Day: 30}
	d1 := Date{Year: 2026, Month: 6, Day: 3}
	d0 := Date{Year: 2026, Month: 6, Day: 1}
	rec := Date{Month: 1, Day: 5}
	for _, r := range []Rule{
		{Name: "month", Months: []time.Month{13}},
		{Name: "weekday", Weekdays: []time.Weekday{7}},
		{Name: "negative", LimitMultiplier: -1},
		{Name: "nan", LimitMultiplier: nan()},
		{Name: "feb30", Dates: []DateRange{{From: feb30, To: feb30}}},
		{Name: "backwards", Dates: []DateRange{{From: d1, To: d0}}},
		{Name: "mixed", Dates: []DateRange{{From: d0, To: rec}}},
	} {
		if _, err := NewCalendar(nil, []Rule{r}); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("rule %s: err = %v, want ErrInvalidRule", r.Name, err)
		}
	}
	// Zero multiplier is 1: a rule that only boosts severity.
	c, err := NewCalendar(nil, []Rule{{Name: "alerts-only", AlertSeverityBoost: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Multiplier(t0, "free") != 1 || c.SeverityBoost(t0) != 2 {
		t.Errorf("alerts-only rule: %v, %d", c.Multiplier(t0, "free"), c.SeverityBoost(t0))
	}
	// A tier named twice is scaled once.
	c, _ = NewCalendar(nil, []Rule{{Name: "dup", Tiers: []string{"free", "free"}, LimitMultiplier: 2}})
	if got := c.Multiplier(t0, "free"); got != 2 {
		t.Errorf("duplicate tier: %v, want 2", got)
	}
	var none *Calendar
	if none.Multiplier(t0, "free") != 1 || none.SeverityBoost(t0) != 0 || none.Active(t0) != nil || none.Location() != time.UTC {
		t.Error("nil calendar is not empty")
	}
}

func nan() float64 { var z float64; return z / z }

func TestParseDate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Date
		ok   bool
	}{
		{"2026-06-01", Date{2026, 6, 1}, true},
		{"12-25", Date{0, 12, 25}, true},
		{"02-29", Date{0, 2, 29}, true},
		{"2027-02-29", Date{}, false},
		{"2026-6-1", Date{}, false},
		{"June 1", Date{}, false},
		{"2026-13-01", Date{}, false},
		{"", Date{}, false},
	} {
		got, err := ParseDate(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseDate(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidDate) {
			t.Errorf("ParseDate(%q): error %v does not wrap ErrInvalidDate", tc.in, err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestLimiterScalesByCalendar(t *testing.T) {
	ny := newYork(t)
	l := newTestLimiter(t, Options{Calendar: weddingCalendar(t, ny)})
	cases := []struct {
		name         string
		at           time.Time
		tier         string
		hour, minute int64
	}{
		{"May: peak season for free", time.Date(2026, 5, 12, 12, 0, 0, 0, ny), "free", 75, 7},
		{"October: normal", time.Date(2026, 10, 13, 12, 0, 0, 0, ny), "free", 100, 10},
		{"May: premium unaffected", time.Date(2026, 5, 12, 12, 0, 0, 0, ny), "premium", 10000, 200},
		{"May Saturday: both rules", time.Date(2026, 5, 16, 12, 0, 0, 0, ny), "free", 112, 11},
	}
	for i, tc := range cases {
		res := l.AllowAt(tc.at, Request{Subject: Subject(rune('a' + i)), Tier: tc.tier})
		h, _ := find(res, PolicyHour)
		m, _ := find(res, PolicyMinute)
		if h.Limit != tc.hour || m.Limit != tc.minute {
			t.Errorf("%s: limits %d/%d, want %d/%d", tc.name, h.Limit, m.Limit, tc.hour, tc.minute)
		}
	}
	// A route bucket is not scaled.
	res := l.AllowAt(time.Date(2026, 5, 16, 12, 0, 0, 0, ny), Request{Subject: "r", Tier: "free", Route: "x", RoutePerMinute: 30})
	if b, _ := find(res, PolicyRoute); b.Limit != 30 {
		t.Errorf("route limit scaled to %d", b.Limit)
	}
}

func TestCalendarSwitchAtLocalMidnight(t *testing.T) {
	ny := newYork(t)
	l := newTestLimiter(t, Options{Calendar: weddingCalendar(t, ny)})
	req := Request{Subject: "k", Tier: "premium"} // burst 200, 300 on Saturdays
	fri := time.Date(2026, 10, 16, 23, 59, 0, 0, ny)
	sat := time.Date(2026, 10, 17, 0, 0, 0, 0, ny)
	satEnd := time.Date(2026, 10, 17, 23, 59, 50, 0, ny)
	sun := time.Date(2026, 10, 18, 0, 0, 0, 0, ny)

	req.Cost = 1
	if res := l.AllowAt(fri, req); !res.Allowed || res.Buckets[1].Limit != 200 {
		t.Fatalf("Friday: %+v", res.Buckets[1])
	}
	// The increase applies at midnight, refilling gradually: the bucket
	// keeps its 200 tokens (full by now) and gains 5 a second (300/min).
	u := l.Peek(sat, "k", "premium")
	if u.Minute.Limit != 300 || u.Minute.Remaining != 200 || u.Minute.Reset != 20*time.Second {
		t.Fatalf("Saturday midnight: %+v", u.Minute)
	}
	if u := l.Peek(sat.Add(20*time.Second), "k", "premium"); u.Minute.Remaining != 300 {
		t.Fatalf("Saturday after 20 s: %+v", u.Minute)
	}
	// Drain the Saturday burst 10 s before midnight...
	req.Cost = 300
	if res := l.AllowAt(satEnd, req); !res.Allowed {
		t.Fatalf("Saturday burst: %+v", res)
	}
	// ...at midnight 50 of 300 have come back; clamped to 200 that is
	// still 50, and the rest refills at 200/min.
	req.Cost = 1
	res := l.AllowAt(sun, req)
	m, _ := find(res, PolicyMinute)
	if !res.Allowed || m.Limit != 200 || m.Remaining != 49 {
		t.Fatalf("Sunday midnight: %+v", m)
	}
}

func TestMonthlyQuotaRollsOverAtLocalMonthStart(t *testing.T) {
	ny := newYork(t)
	cal, _ := NewCalendar(ny, nil)
	l := newTestLimiter(t, Options{Calendar: cal})
	req := Request{Subject: "k", Tier: "metered"} // quota 5
	// 23:59 on 31 January in New York is already February in UTC.
	jan := time.Date(2026, 1, 31, 23, 59, 0, 0, ny)
	feb := time.Date(2026, 2, 1, 0, 0, 0, 0, ny)
	req.Cost = 4
	if res := l.AllowAt(jan, req); !res.Allowed || res.MonthlyUsed != 4 || res.MonthlyQuota != 5 {
		t.Fatalf("first: %+v", res)
	}
	req.Cost = 2
	res := l.AllowAt(jan.Add(10*time.Second), req)
	if res.Allowed || res.Reason != ReasonQuotaExceeded || res.RetryAfter != 50*time.Second {
		t.Fatalf("over quota: allowed %v reason %v retry %v", res.Allowed, res.Reason, res.RetryAfter)
	}
	if res.MonthlyUsed != 4 {
		t.Fatalf("denied request counted: used %d", res.MonthlyUsed)
	}
	if h, _ := find(res, PolicyHour); h.Remaining != 998 || h.Reset != 4400*time.Millisecond {
		t.Fatalf("denied by quota but buckets debited: %+v", h)
	}
	req.Cost = 1
	if res := l.AllowAt(jan.Add(20*time.Second), req); !res.Allowed || res.MonthlyUsed != 5 {
		t.Fatalf("last unit: %+v", res)
	}
	if res := l.AllowAt(feb.Add(-time.Nanosecond), req); res.Allowed || res.Reason != ReasonQuotaExceeded || res.RetryAfter != time.Nanosecond {
		t.Fatalf("last instant of January: %+v", res)
	}
	if res := l.AllowAt(feb, req); !res.Allowed || res.MonthlyUsed != 1 {
		t.Fatalf("new month: %+v", res)
	}
}

func TestQuotaAppliesToRouteOnly(t *testing.T) {
	l := newTestLimiter(t, Options{})
	req := Request{Subject: "k", Tier: "metered", Route: "bulk", RoutePerMinute: 100, RouteOnly: true, Cost: 5}
	if res := l.AllowAt(t0, req); !res.Allowed || res.MonthlyUsed != 5 {
		t.Fatalf("%+v", res)
	}
	req.Cost = 1
	if res := l.AllowAt(t0, req); res.Reason != ReasonQuotaExceeded {
		t.Fatalf("quota not applied to a route-only request: %+v", res)
	}
}
