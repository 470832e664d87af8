package analytics

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// Interval is the width of a time series bucket.
type Interval string

// The intervals.
const (
	IntervalMinute Interval = "minute" // from raw records
	IntervalHour   Interval = "hour"   // from hourly cells (UTC hours)
	IntervalDay    Interval = "day"    // from daily cells in UTC, else hourly cells summed over local days
)

// ParseInterval parses "minute", "hour" or "day".
func ParseInterval(s string) (Interval, error) {
	switch iv := Interval(s); iv {
	case IntervalMinute, IntervalHour, IntervalDay:
		return iv, nil
	}
	return "", paramErrorf("interval", "must be minute, hour or day, got %q", s)
}

// Limits on a series.
const (
	// MaxMinuteBuckets bounds a minute series (raw records are read in
	// full for it): a day.
	MaxMinuteBuckets = 1440
	// MaxBuckets bounds an hour or day series.
	MaxBuckets = 10000
	// MaxRawSeriesCells bounds the (group, minute) pairs a minute series
	// may hold in memory while it reads raw records.
	MaxRawSeriesCells = 200000
)

// GroupBy names what a series or a billing report is split by.
type GroupBy string

// The groupings; GroupNone is one series named "all".
const (
	GroupNone   GroupBy = ""
	GroupRoute  GroupBy = "route"
	GroupKey    GroupBy = "key"
	GroupOwner  GroupBy = "owner"
	GroupTier   GroupBy = "tier"
	GroupStatus GroupBy = "status" // status class: "2xx", "4xx", …
)

// ParseGroupBy parses a group_by parameter for a series.
func ParseGroupBy(s string) (GroupBy, error) {
	switch g := GroupBy(s); g {
	case GroupNone, GroupRoute, GroupKey, GroupOwner, GroupTier, GroupStatus:
		return g, nil
	}
	return "", paramErrorf("group_by", "must be route, key, owner, tier or status, got %q", s)
}

func (g GroupBy) dimension() metrics.Dimension {
	switch g {
	case GroupRoute:
		return metrics.DimRoute
	case GroupKey:
		return metrics.DimKey
	case GroupOwner:
		return metrics.DimOwner
	case GroupTier:
		return metrics.DimTier
	case GroupStatus:
		return metrics.DimStatusClass
	}
	return metrics.DimTotal
}

// of returns the group a raw record falls in, "" when it has none.
func (g GroupBy) of(rec *metrics.Record) string {
	switch g {
	case GroupRoute:
		return rec.Route
	case GroupKey:
		return rec.KeyID
	case GroupOwner:
		return rec.OwnerID
	case GroupTier:
		return rec.Tier
	case GroupStatus:
		if c := rec.StatusClass(); c > 0 {
			return strconv.Itoa(c) + "xx"
		}
		return ""
	}
	return "all"
}

// Filter keeps the requests whose non-empty fields all match.
type Filter struct {
	Route   string
	KeyID   string
	OwnerID string
	Tier    string
}

func (f *Filter) match(rec *metrics.Record) bool {
	return (f.Route == "" || rec.Route == f.Route) && (f.KeyID == "" || rec.KeyID == f.KeyID) &&
		(f.OwnerID == "" || rec.OwnerID == f.OwnerID) && (f.Tier == "" || rec.Tier == f.Tier)
}

// rollup returns the one filter a rollup can apply: its dimension, value
// and parameter name. ok is false without filters; an error names the
// second filter when there are several.
func (f *Filter) rollup() (dim metrics.Dimension, value, param string, ok bool, err error) {
	for _, c := range []struct {
		dim          metrics.Dimension
		value, param string
	}{{metrics.DimRoute, f.Route, "route"}, {metrics.DimKey, f.KeyID, "key_id"},
		{metrics.DimOwner, f.OwnerID, "owner_id"}, {metrics.DimTier, f.Tier, "tier"}} {
		if c.value == "" {
			continue
		}
		if ok {
			return 0, "", "", false, paramErrorf(c.param,
				"cannot be combined with %s in an hour or day series: rollups are kept per dimension; use interval=minute (raw records) for combined filters", param)
		}
		dim, value, param, ok = c.dim, c.value, c.param, true
	}
	return dim, value, param, ok, nil
}

// SeriesQuery asks for a time series.
type SeriesQuery struct {
	// From and To bound the series; they are widened to whole buckets. A
	// zero To is now; a zero From is an hour (minute), a day (hour) or 30
	// days (day) before To.
	From, To time.Time
	Interval Interval
	// Location decides where days start for IntervalDay; nil means the
	// configured one. Other intervals ignore it.
	Location *time.Location
	GroupBy  GroupBy
	Filter   Filter
}

// Point is one bucket of a series: its start and its Stats, flattened in
// JSON ({"t":…, "requests":…}).
type Point struct {
	T time.Time `json:"t"`
	Stats
}

// Series is one group's points, every bucket of the range present, in
// time order.
type Series struct {
	Group  string  `json:"group"`
	Points []Point `json:"points"`
}

// SeriesResult is the answer to a SeriesQuery (docs/API.md, timeseries).
type SeriesResult struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Interval Interval  `json:"interval"`
	TZ       string    `json:"tz"`
	GroupBy  GroupBy   `json:"group_by"`
	Series   []Series  `json:"series"`
}

// SeriesPlan is a checked SeriesQuery with its buckets worked out: the
// API validates a query (and answers 400) before it starts streaming.
type SeriesPlan struct {
	// From and To are the range covered: the first bucket's start and the
	// last one's end, clipped to retention.
	From, To time.Time
	Interval Interval
	Location *time.Location
	GroupBy  GroupBy

	svc    *Service
	filter Filter
	bounds []time.Time // bucket i is [bounds[i], bounds[i+1])
	now    time.Time
}

// Buckets returns the number of points each series has.
func (p *SeriesPlan) Buckets() int { return len(p.bounds) - 1 }

// PlanSeries checks q and works out its buckets at the Service's clock.
// It returns a *ParamError naming the parameter that is wrong.
func (s *Service) PlanSeries(q SeriesQuery) (*SeriesPlan, error) {
	if _, err := ParseInterval(string(q.Interval)); err != nil {
		return nil, err
	}
	if _, err := ParseGroupBy(string(q.GroupBy)); err != nil {
		return nil, err
	}
	now := s.now()
	loc := q.Location
	if loc == nil {
		loc = s.loc
	}
	if q.Interval != IntervalDay {
		loc = time.UTC
	}
	to := q.To
	if to.IsZero() || to.After(now) {
		to = now
	}
	from := q.From
	if from.IsZero() {
		switch q.Interval {
		case IntervalMinute:
			from = to.Add(-time.Hour)
		case IntervalHour:
			from = to.Add(-24 * time.Hour)
		default:
			from = to.AddDate(0, 0, -30)
		}
	}
	if !from.Before(to) {
		return nil, paramErrorf("from", "must be before to (%s), got %s", to.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339))
	}
	if q.Interval != IntervalMinute {
		dim, _, param, ok, err := q.Filter.rollup()
		if err != nil {
			return nil, err
		}
		if ok && q.GroupBy != GroupNone && q.GroupBy.dimension() != dim {
			return nil, paramErrorf("group_by",
				"cannot split a series filtered by %s by %s in an hour or day series: rollups are kept per dimension; use interval=minute (raw records) or drop the filter", param, q.GroupBy)
		}
	}

	var cut time.Time
	switch {
	case q.Interval == IntervalMinute:
		cut = s.EarliestRaw(now)
	case q.Interval == IntervalDay && loc == time.UTC:
		cut = s.EarliestDaily(now)
	default:
		cut = s.EarliestHourly(now)
	}
	if !cut.IsZero() && from.Before(cut) {
		if !to.After(cut) {
			return nil, paramErrorf("to", "the whole range is older than retention keeps (%s data from %s)", q.Interval, cut.UTC().Format(time.RFC3339))
		}
		from = cut
	}

	p := &SeriesPlan{Interval: q.Interval, Location: loc, GroupBy: q.GroupBy, svc: s, filter: q.Filter, now: now}
	limit := MaxBuckets
	if q.Interval == IntervalMinute {
		limit = MaxMinuteBuckets
	}
	start := bucketStart(q.Interval, from, loc)
	if !cut.IsZero() && start.Before(cut) {
		start = nextBucket(q.Interval, start, loc) // the bucket holding cut is partly gone
	}
	for b := start; ; b = nextBucket(q.Interval, b, loc) {
		p.bounds = append(p.bounds, b)
		if !b.Before(to) {
			break
		}
		if len(p.bounds) > limit {
			return nil, paramErrorf("from", "the range holds more than %d %s buckets; narrow it or use a wider interval", limit, q.Interval)
		}
	}
	if len(p.bounds) < 2 {
		p.bounds = append(p.bounds, nextBucket(q.Interval, start, loc))
	}
	p.From, p.To = p.bounds[0].UTC(), p.bounds[len(p.bounds)-1].UTC()
	return p, nil
}

func bucketStart(iv Interval, t time.Time, loc *time.Location) time.Time {
	switch iv {
	case IntervalMinute:
		return t.Truncate(time.Minute)
	case IntervalHour:
		return t.Truncate(time.Hour)
	}
	return PeriodDay.Start(t, loc)
}

func nextBucket(iv Interval, t time.Time, loc *time.Location) time.Time {
	switch iv {
	case IntervalMinute:
		return t.Add(time.Minute)
	case IntervalHour:
		return t.Add(time.Hour)
	}
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
}

// bucketOf returns the index of the bucket holding t, -1 outside. unit
// is the length of what starts at t: 0 for a raw record's instant, an hour
// for a rollup cell. A cell cannot be split, so where a bucket edge falls
// inside an hour (local midnight in a zone with a half-hour offset) the
// cell holding the edge counts in the bucket that begins there, as in the
// billing report: a month of daily points then adds up to the month's bill.
func (p *SeriesPlan) bucketOf(t time.Time, unit time.Duration) int {
	i := sort.Search(len(p.bounds), func(i int) bool { return p.bounds[i].Truncate(unit).After(t) }) - 1
	if i < 0 || i >= len(p.bounds)-1 {
		return -1
	}
	return i
}

// Series answers q in memory. Errors as PlanSeries and Each.
func (s *Service) Series(ctx context.Context, q SeriesQuery) (SeriesResult, error) {
	p, err := s.PlanSeries(q)
	if err != nil {
		return SeriesResult{}, err
	}
	out := SeriesResult{From: p.From, To: p.To, Interval: p.Interval, TZ: p.Location.String(), GroupBy: p.GroupBy, Series: []Series{}}
	err = p.Each(ctx, func(group string, points []Point) error {
		out.Series = append(out.Series, Series{Group: group, Points: points})
		return nil
	})
	return out, err
}

// Each calls fn once per group, in group order, with every bucket's
// point. Hour and day series read one group at a time in its own short
// read transaction (after one pass that lists the groups), so a caller
// may write each group to a slow client without holding the store open
// and without the whole answer in memory. Minute series are built from
// raw records first (at most MaxRawSeriesCells non-empty group-minutes)
// and then handed out. fn owns the slice it gets. Each returns the first
// error fn returns, a *ParamError when a minute series has too many
// groups, or the Source's error.
func (p *SeriesPlan) Each(ctx context.Context, fn func(group string, points []Point) error) error {
	if p.Interval == IntervalMinute {
		return p.eachRaw(ctx, fn)
	}
	return p.eachRollup(ctx, fn)
}

func (p *SeriesPlan) cellInterval() metrics.Interval {
	if p.Interval == IntervalDay && p.Location == time.UTC {
		return metrics.Daily
	}
	return metrics.Hourly
}

func (p *SeriesPlan) eachRollup(ctx context.Context, fn func(string, []Point) error) error {
	fdim, fvalue, _, filtered, _ := p.filter.rollup()
	dim := p.GroupBy.dimension()
	var groups []string
	switch {
	case filtered:
		dim = fdim
		name := "all"
		if p.GroupBy != GroupNone {
			name = fvalue
		}
		groups = []string{name}
	case p.GroupBy == GroupNone:
		groups = []string{"all"}
	default:
		// One pass to list the groups with traffic in the range.
		q := metrics.CellQuery{Interval: p.cellInterval(), Dimension: dim, AllValues: true, From: p.From, To: p.To}
		last, first := "", true
		err := p.svc.src.ScanCells(ctx, q, func(v string, _ time.Time, _ *metrics.Cell) error {
			if first || v != last {
				groups = append(groups, v)
				last, first = v, false
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.Sort(groups)
	}
	acc := make([]metrics.Cell, p.Buckets())
	for _, g := range groups {
		value := g
		if filtered {
			value = fvalue
		} else if p.GroupBy == GroupNone {
			value = ""
		}
		for i := range acc {
			acc[i].Reset()
		}
		q := metrics.CellQuery{Interval: p.cellInterval(), Dimension: dim, Value: value, From: p.From, To: p.To}
		err := p.svc.src.ScanCells(ctx, q, func(_ string, start time.Time, c *metrics.Cell) error {
			if i := p.bucketOf(start, time.Hour); i >= 0 {
				acc[i].Merge(c)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := fn(g, p.points(acc)); err != nil {
			return err
		}
	}
	return nil
}

func (p *SeriesPlan) points(acc []metrics.Cell) []Point {
	points := make([]Point, len(acc))
	for i := range acc {
		points[i] = Point{T: p.bounds[i].UTC(), Stats: StatsOf(&acc[i])}
	}
	return points
}

func (p *SeriesPlan) eachRaw(ctx context.Context, fn func(string, []Point) error) error {
	groups := make(map[string]map[int]*metrics.Cell)
	cells := 0
	err := p.svc.EachRecord(ctx, RecordQuery{From: p.From, To: p.To, KeyID: p.filter.KeyID, Route: p.filter.Route, Order: metrics.OldestFirst},
		func(rec *metrics.Record) error {
			if !p.filter.match(rec) {
				return nil
			}
			g := p.GroupBy.of(rec)
			i := p.bucketOf(rec.Time, 0)
			if g == "" || i < 0 {
				return nil
			}
			buckets := groups[g]
			if buckets == nil {
				buckets = make(map[int]*metrics.Cell)
				groups[g] = buckets
			}
			c := buckets[i]
			if c == nil {
				if cells++; cells > MaxRawSeriesCells {
					return paramErrorf("group_by", "the minute series has more than %d non-empty group-minutes; narrow the range or filter", MaxRawSeriesCells)
				}
				c = new(metrics.Cell)
				buckets[i] = c
			}
			c.Add(rec)
			return nil
		})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	if p.GroupBy == GroupNone && len(names) == 0 {
		names = append(names, "all")
	}
	if p.GroupBy != GroupNone && len(names) == 0 && p.filterGroup() != "" {
		names = append(names, p.filterGroup())
	}
	acc := make([]metrics.Cell, p.Buckets())
	for _, g := range names {
		for i := range acc {
			acc[i].Reset()
		}
		for i, c := range groups[g] {
			acc[i] = *c
		}
		if err := fn(g, p.points(acc)); err != nil {
			return err
		}
	}
	return nil
}

// filterGroup is the one group a filter on the grouped dimension leaves.
func (p *SeriesPlan) filterGroup() string {
	switch p.GroupBy {
	case GroupRoute:
		return p.filter.Route
	case GroupKey:
		return p.filter.KeyID
	case GroupOwner:
		return p.filter.OwnerID
	case GroupTier:
		return p.filter.Tier
	}
	return ""
}

// String describes the plan, for logs.
func (p *SeriesPlan) String() string {
	return fmt.Sprintf("%s series %s..%s group_by=%q (%d buckets)", p.Interval, p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), p.GroupBy, p.Buckets())
}
