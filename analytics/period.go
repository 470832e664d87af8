package analytics

import (
	"time"
)

// Period is a calendar period: the hour, day, week (from Monday) or month
// in progress.
type Period string

// The periods.
const (
	PeriodHour  Period = "hour"
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// ParsePeriod parses "hour", "day", "week" or "month".
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case PeriodHour, PeriodDay, PeriodWeek, PeriodMonth:
		return p, nil
	}
	return "", paramErrorf("period", "must be hour, day, week or month, got %q", s)
}

// Start returns the start of the period that holds t in loc. Hours are
// UTC hours (the same as local ones in every zone with a whole-hour
// offset), because hourly rollup cells are.
func (p Period) Start(t time.Time, loc *time.Location) time.Time {
	if p == PeriodHour {
		return t.Truncate(time.Hour)
	}
	l := t.In(loc)
	y, m, d := l.Date()
	switch p {
	case PeriodWeek:
		d -= (int(l.Weekday()) + 6) % 7 // back to Monday
	case PeriodMonth:
		d = 1
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// Previous returns the start of the period before the one starting at
// start.
func (p Period) Previous(start time.Time, loc *time.Location) time.Time {
	if p == PeriodHour {
		return start.Add(-time.Hour)
	}
	l := start.In(loc)
	y, m, d := l.Date()
	switch p {
	case PeriodDay:
		d--
	case PeriodWeek:
		d -= 7
	case PeriodMonth:
		m--
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// CurrentRange is [start of the period in progress, now).
func (p Period) CurrentRange(now time.Time, loc *time.Location) (from, to time.Time) {
	return p.Start(now, loc), now
}
