package limiter

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Date is a civil date: a day in whatever time zone the Calendar uses, with
// no clock time. Year 0 means "every year", which is how a DateRange
// expresses a recurring period such as 12-20..01-05.
type Date struct {
	Year  int // 0 = every year
	Month time.Month
	Day   int
}

// ParseDate reads "2006-01-02" (one day) or "01-02" (that day every year).
//
// It returns an error wrapping ErrInvalidDate when s is neither or names a
// day that does not exist.
func ParseDate(s string) (Date, error) {
	parts := strings.Split(s, "-")
	var d Date
	var err error
	switch len(parts) {
	case 3:
		if len(parts[0]) != 4 {
			return Date{}, fmt.Errorf("%w %q: want YYYY-MM-DD or MM-DD", ErrInvalidDate, s)
		}
		if d.Year, err = strconv.Atoi(parts[0]); err != nil || d.Year < 1 {
			return Date{}, fmt.Errorf("%w %q: year must be a positive number", ErrInvalidDate, s)
		}
		parts = parts[1:]
	case 2:
	default:
		return Date{}, fmt.Errorf("%w %q: want YYYY-MM-DD or MM-DD", ErrInvalidDate, s)
	}
	month, err1 := strconv.Atoi(parts[0])
	day, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || len(parts[0]) != 2 || len(parts[1]) != 2 {
		return Date{}, fmt.Errorf("%w %q: want YYYY-MM-DD or MM-DD", ErrInvalidDate, s)
	}
	d.Month, d.Day = time.Month(month), day
	if err := d.validate(); err != nil {
		return Date{}, fmt.Errorf("%w %q: %v", ErrInvalidDate, s, err)
	}
	return d, nil
}

// String formats d as ParseDate reads it.
func (d Date) String() string {
	if d.Year == 0 {
		return fmt.Sprintf("%02d-%02d", int(d.Month), d.Day)
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

func (d Date) validate() error {
	if d.Month < time.January || d.Month > time.December {
		return fmt.Errorf("month %d is not in 1..12", int(d.Month))
	}
	// A recurring date is checked against a leap year so that 02-29 is allowed.
	year := d.Year
	if year == 0 {
		year = 2000
	}
	if d.Day < 1 || d.Day > daysIn(year, d.Month) {
		return fmt.Errorf("%s has no day %d", d.Month, d.Day)
	}
	return nil
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// DateRange is an inclusive range of civil dates, From..To. Either both ends
// name a year (2026-06-01..2026-06-03, which may span a year end:
// 2026-12-28..2027-01-02), or neither does (12-20..01-05): such a range
// recurs every year and wraps over the year end when From is after To.
type DateRange struct {
	From, To Date
}

func (r DateRange) validate() error {
	if err := r.From.validate(); err != nil {
		return fmt.Errorf("from %s: %v", r.From, err)
	}
	if err := r.To.validate(); err != nil {
		return fmt.Errorf("to %s: %v", r.To, err)
	}
	if (r.From.Year == 0) != (r.To.Year == 0) {
		return fmt.Errorf("%s..%s: give a year on both ends or on neither", r.From, r.To)
	}
	if r.From.Year != 0 && dayKey(r.From.Year, r.From.Month, r.From.Day) > dayKey(r.To.Year, r.To.Month, r.To.Day) {
		return fmt.Errorf("%s..%s: from is after to", r.From, r.To)
	}
	return nil
}

// contains reports whether the civil day y-m-d is in the range.
func (r DateRange) contains(y int, m time.Month, d int) bool {
	if r.From.Year != 0 {
		k := dayKey(y, m, d)
		return dayKey(r.From.Year, r.From.Month, r.From.Day) <= k && k <= dayKey(r.To.Year, r.To.Month, r.To.Day)
	}
	k, from, to := dayKey(0, m, d), dayKey(0, r.From.Month, r.From.Day), dayKey(0, r.To.Month, r.To.Day)
	if from <= to {
		return from <= k && k <= to
	}
	return k >= from || k <= to // wraps over the year end
}

func dayKey(y int, m time.Month, d int) int { return y*10000 + int(m)*100 + d }

// Rule is a calendar rule: on the days it matches, it scales the limits of
// the tiers it names and raises the severity of alerts. A rule matches a
// day when every condition it sets matches (months AND weekdays AND dates);
// a condition left empty matches any day.
type Rule struct {
	Name     string
	Months   []time.Month   // empty: any month
	Weekdays []time.Weekday // empty: any weekday
	Dates    []DateRange    // empty: any date; otherwise the day must fall in one range
	// Tiers names the tiers whose limits the rule scales; empty: all tiers.
	Tiers []string
	// LimitMultiplier scales RequestsPerHour and BurstPerMinute of the named
	// tiers while the rule is active; several active rules multiply. 0 means
	// 1 (a rule that only boosts alert severity). Must not be negative.
	LimitMultiplier float64
	// AlertSeverityBoost raises the severity of alerts by this many steps
	// while the rule is active; active rules add up.
	AlertSeverityBoost int
}

// compiledRule is a Rule with its conditions turned into bit masks.
type compiledRule struct {
	Rule
	months   uint16 // bit m set for each month; 0 = any
	weekdays uint8  // bit d set for each weekday; 0 = any
	mult     float64
	tierSet  []string // Tiers without duplicates, so a tier is scaled once per rule
}

func compileRule(r Rule) (compiledRule, error) {
	c := compiledRule{Rule: r, mult: r.LimitMultiplier}
	c.Months = slices.Clone(r.Months)
	c.Weekdays = slices.Clone(r.Weekdays)
	c.Dates = slices.Clone(r.Dates)
	c.Tiers = slices.Clone(r.Tiers)
	c.tierSet = slices.Compact(slices.Sorted(slices.Values(r.Tiers)))
	fail := func(format string, args ...any) (compiledRule, error) {
		return compiledRule{}, fmt.Errorf("%w %q: %s", ErrInvalidRule, r.Name, fmt.Sprintf(format, args...))
	}
	for _, m := range r.Months {
		if m < time.January || m > time.December {
			return fail("month %d is not in 1..12", int(m))
		}
		c.months |= 1 << m
	}
	for _, d := range r.Weekdays {
		if d < time.Sunday || d > time.Saturday {
			return fail("weekday %d is not in 0 (Sunday)..6 (Saturday)", int(d))
		}
		c.weekdays |= 1 << d
	}
	for _, dr := range r.Dates {
		if err := dr.validate(); err != nil {
			return fail("dates: %v", err)
		}
	}
	switch {
	case r.LimitMultiplier < 0 || math.IsNaN(r.LimitMultiplier) || math.IsInf(r.LimitMultiplier, 0):
		return fail("limit multiplier must be a finite number > 0, got %v", r.LimitMultiplier)
	case r.LimitMultiplier == 0:
		c.mult = 1
	}
	return c, nil
}

// matches reports whether the rule is active on the civil day y-m-d.
func (c *compiledRule) matches(y int, m time.Month, d int, wd time.Weekday) bool {
	if c.months != 0 && c.months&(1<<m) == 0 {
		return false
	}
	if c.weekdays != 0 && c.weekdays&(1<<wd) == 0 {
		return false
	}
	if len(c.Dates) == 0 {
		return true
	}
	for _, dr := range c.Dates {
		if dr.contains(y, m, d) {
			return true
		}
	}
	return false
}

// Calendar decides, for any instant, which rules are active and so what
// each tier's limits are multiplied by. Rules are day-granular in the
// calendar's time zone: they start and end at local midnight.
//
// A Calendar is immutable once built and safe for concurrent use. It caches
// the current local day, so the common call costs two comparisons and a map
// lookup instead of a time zone conversion. A nil *Calendar has no rules
// and uses UTC.
type Calendar struct {
	loc   *time.Location
	rules []compiledRule
	today atomic.Pointer[calendarDay]
}

// calendarDay is everything the calendar says about one local day, valid
// for instants in [start, end).
type calendarDay struct {
	start, end int64 // unix nanoseconds
	monthID    int32 // year*12 + month-1 of the local month
	monthEnd   int64 // unix nanoseconds of the next local month start
	defaultMul float64
	byTier     map[string]float64 // tiers some active rule names
	boost      int
	active     []string
}

// NewCalendar builds a calendar in time zone loc (nil: UTC) from rules,
// which it copies.
//
// It returns an error wrapping ErrInvalidRule naming the first rule with an
// out-of-range month, weekday, date range or a negative multiplier.
func NewCalendar(loc *time.Location, rules []Rule) (*Calendar, error) {
	if loc == nil {
		loc = time.UTC
	}
	c := &Calendar{loc: loc, rules: make([]compiledRule, 0, len(rules))}
	for _, r := range rules {
		cr, err := compileRule(r)
		if err != nil {
			return nil, err
		}
		c.rules = append(c.rules, cr)
	}
	return c, nil
}

// Location returns the calendar's time zone.
func (c *Calendar) Location() *time.Location {
	if c == nil {
		return time.UTC
	}
	return c.loc
}

// Rules returns a copy of the calendar's rules.
func (c *Calendar) Rules() []Rule {
	if c == nil {
		return nil
	}
	out := make([]Rule, len(c.rules))
	for i, r := range c.rules {
		out[i] = r.Rule
		out[i].Months = slices.Clone(r.Months)
		out[i].Weekdays = slices.Clone(r.Weekdays)
		out[i].Dates = slices.Clone(r.Dates)
		out[i].Tiers = slices.Clone(r.Tiers)
	}
	return out
}

// Multiplier returns what tier's limits are multiplied by at now: the
// product of the multipliers of all active rules that name the tier (or
// name no tier), 1 when none is active.
func (c *Calendar) Multiplier(now time.Time, tier string) float64 {
	if c == nil {
		return 1
	}
	return c.dayAt(now).multiplier(tier)
}

// SeverityBoost returns the sum of the alert severity boosts of the rules
// active at now.
func (c *Calendar) SeverityBoost(now time.Time) int {
	if c == nil {
		return 0
	}
	return c.dayAt(now).boost
}

// Active returns the names of the rules active at now, in rule order.
func (c *Calendar) Active(now time.Time) []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.dayAt(now).active)
}

func (d *calendarDay) multiplier(tier string) float64 {
	if m, ok := d.byTier[tier]; ok {
		return m
	}
	return d.defaultMul
}

// dayAt returns the cached day containing now, computing and caching it
// when now is outside the cached day. Callers running at different days
// (tests) only cost each other a recomputation.
func (c *Calendar) dayAt(now time.Time) *calendarDay {
	at := now.UnixNano()
	if d := c.today.Load(); d != nil && d.start <= at && at < d.end {
		return d
	}
	d := c.computeDay(now)
	c.today.Store(d)
	return d
}

func (c *Calendar) computeDay(now time.Time) *calendarDay {
	local := now.In(c.loc)
	y, m, dom := local.Date()
	wd := local.Weekday()
	d := &calendarDay{
		start:      time.Date(y, m, dom, 0, 0, 0, 0, c.loc).UnixNano(),
		end:        time.Date(y, m, dom+1, 0, 0, 0, 0, c.loc).UnixNano(),
		monthID:    int32(y*12 + int(m) - 1),
		monthEnd:   time.Date(y, m+1, 1, 0, 0, 0, 0, c.loc).UnixNano(),
		defaultMul: 1,
	}
	// Where a DST change skips or repeats midnight, time.Date may pick an
	// instant on the wrong side of now; keep the cached span around now.
	at := now.UnixNano()
	d.start = min(d.start, at)
	d.end = max(d.end, at+1)

	for i := range c.rules {
		r := &c.rules[i]
		if !r.matches(y, m, dom, wd) {
			continue
		}
		d.active = append(d.active, r.Name)
		d.boost += r.AlertSeverityBoost
		if len(r.Tiers) == 0 {
			d.defaultMul *= r.mult
			for t := range d.byTier {
				d.byTier[t] *= r.mult
			}
			continue
		}
		if d.byTier == nil {
			d.byTier = make(map[string]float64)
		}
		for _, t := range r.tierSet {
			if _, ok := d.byTier[t]; !ok {
				d.byTier[t] = d.defaultMul
			}
			d.byTier[t] *= r.mult
		}
	}
	return d
}
