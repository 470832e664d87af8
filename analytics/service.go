package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
)

// Source is what Service reads: rollup cells and raw records.
// *metrics.Reader satisfies it.
type Source interface {
	ScanCells(ctx context.Context, q metrics.CellQuery, fn func(value string, start time.Time, c *metrics.Cell) error) error
	ScanCellsAt(ctx context.Context, interval metrics.Interval, dim metrics.Dimension, at []time.Time, fn func(value string, start time.Time, c *metrics.Cell) error) error
	Records(ctx context.Context, q metrics.RecordQuery) (metrics.RecordPage, error)
}

var _ Source = (*metrics.Reader)(nil)

// Peeker reads a subject's live bucket state without consuming anything.
// *limiter.Limiter and *limiter.Redis satisfy it.
type Peeker interface {
	Peek(now time.Time, subject limiter.Subject, tier string) limiter.Usage
}

var (
	_ Peeker = (*limiter.Limiter)(nil)
	_ Peeker = (*limiter.Redis)(nil)
)

// CalendarRules names the calendar rules in force at an instant.
// *limiter.Calendar satisfies it (a nil one has no rules).
type CalendarRules interface {
	Active(now time.Time) []string
}

var _ CalendarRules = (*limiter.Calendar)(nil)

// Retention is how many UTC days of each kind of data the metrics
// Recorder keeps (metrics.Options' fields of the same names); 0 keeps
// forever. Queries clip their ranges to it.
type Retention struct {
	RawDays    int
	HourlyDays int
	DailyDays  int
}

// Options configure a Service. Source is required.
type Options struct {
	Source Source
	// Location is the configured time zone (server.timezone): days and
	// months of the billing report and of per-key usage start at its
	// midnight, and it is the default of every query's time zone. Nil
	// means UTC.
	Location *time.Location
	// Retention of the Recorder that fills Source.
	Retention Retention
	// Limits gives KeyUsage its live bucket state; nil leaves it out.
	Limits Peeker
	// Calendar gives KeyUsage the calendar rules in force; nil means none.
	Calendar CalendarRules
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service answers analytics queries over rollups and raw records. It
// holds no state of its own beyond its options and is safe for
// concurrent use.
type Service struct {
	src       Source
	loc       *time.Location
	retention Retention
	limits    Peeker
	calendar  CalendarRules
	now       func() time.Time
}

// New returns a Service. It returns ErrBadOptions when Source is missing
// or a retention is negative.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Source == nil:
		return nil, fmt.Errorf("%w: Source is required", ErrBadOptions)
	case opts.Retention.RawDays < 0 || opts.Retention.HourlyDays < 0 || opts.Retention.DailyDays < 0:
		return nil, fmt.Errorf("%w: retention days must be ≥ 0 (0 keeps forever)", ErrBadOptions)
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{src: opts.Source, loc: opts.Location, retention: opts.Retention,
		limits: opts.Limits, calendar: opts.Calendar, now: opts.Now}, nil
}

// Location returns the configured time zone.
func (s *Service) Location() *time.Location { return s.loc }

// Now returns the Service's clock reading.
func (s *Service) Now() time.Time { return s.now() }

// earliest returns the first instant whose data of this kind retention
// still keeps at now (the zero time when it keeps everything): data of UTC
// day D goes once the current UTC day is later than D + days.
func earliest(now time.Time, days int) time.Time {
	if days <= 0 {
		return time.Time{}
	}
	return metrics.Daily.Truncate(now).AddDate(0, 0, -days)
}

// EarliestRaw, EarliestHourly and EarliestDaily return the first instant
// retention still keeps raw records, hourly cells and daily cells of at
// now; the zero time when it keeps them forever.
func (s *Service) EarliestRaw(now time.Time) time.Time { return earliest(now, s.retention.RawDays) }

// EarliestHourly: see EarliestRaw.
func (s *Service) EarliestHourly(now time.Time) time.Time {
	return earliest(now, s.retention.HourlyDays)
}

// EarliestDaily: see EarliestRaw.
func (s *Service) EarliestDaily(now time.Time) time.Time { return earliest(now, s.retention.DailyDays) }

// earliestRollup is the first instant some rollup still covers: sums
// over a range use daily cells where hourly ones have gone.
func (s *Service) earliestRollup(now time.Time) time.Time {
	h, d := s.EarliestHourly(now), s.EarliestDaily(now)
	if h.IsZero() || d.IsZero() {
		return time.Time{}
	}
	return minTime(h, d)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// cellVisit is called for each cell a cover scan reads.
type cellVisit func(value string, start time.Time, iv metrics.Interval, c *metrics.Cell) error

// scanCover reads the cells of dim (one value, or every value with all
// set) that together make up [from, to) (cover) and calls fn for each.
// Values are visited in storage order, once per part (edges first, then
// the days), so a caller that needs one pass per value must merge.
func (s *Service) scanCover(ctx context.Context, dim metrics.Dimension, value string, all bool,
	from, to time.Time, now time.Time, fn cellVisit) error {
	for _, q := range s.cover(dim, value, all, from, to, now) {
		iv := q.Interval
		err := s.src.ScanCells(ctx, q, func(v string, start time.Time, c *metrics.Cell) error {
			return fn(v, start, iv, c)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// cover returns the cell queries of dim (one value, or every value with
// all set) whose cells together make up [from, to): daily cells for the
// UTC days wholly inside the range (and still kept), hourly cells for the
// rest, edges first. A range that reaches now counts as reaching the end
// of today, whose daily cell then holds exactly the range's part of the
// day. from and to are rounded outwards to whole hours first, because
// hourly cells are the finest rollup. Every query's From and To are
// starts of its interval.
func (s *Service) cover(dim metrics.Dimension, value string, all bool, from, to time.Time, now time.Time) []metrics.CellQuery {
	from = metrics.Hourly.Truncate(from)
	if t := metrics.Hourly.Truncate(to); t.Before(to) {
		to = t.Add(time.Hour)
	}
	if !from.Before(to) {
		return nil
	}
	part := func(iv metrics.Interval, from, to time.Time) metrics.CellQuery {
		return metrics.CellQuery{Interval: iv, Dimension: dim, Value: value, AllValues: all, From: from, To: to}
	}
	dayFrom := metrics.Daily.Truncate(from)
	if dayFrom.Before(from) {
		dayFrom = dayFrom.AddDate(0, 0, 1)
	}
	dayTo := metrics.Daily.Truncate(to)
	if !to.Before(now) && dayTo.Before(to) {
		// Nothing is recorded after now, so the cell of the day in
		// progress holds exactly the range's part of it: one daily cell
		// instead of up to 24 hourly ones.
		dayTo = dayTo.AddDate(0, 0, 1)
	}
	if cut := s.EarliestDaily(now); !cut.IsZero() && dayFrom.Before(cut) {
		dayFrom = cut
	}
	if !dayFrom.Before(dayTo) {
		return []metrics.CellQuery{part(metrics.Hourly, from, to)}
	}
	var parts []metrics.CellQuery
	if from.Before(dayFrom) {
		parts = append(parts, part(metrics.Hourly, from, dayFrom))
	}
	if dayTo.Before(to) {
		parts = append(parts, part(metrics.Hourly, dayTo, to))
	}
	return append(parts, part(metrics.Daily, dayFrom, dayTo))
}

// sumCover merges the cells of one value of dim over [from, to).
func (s *Service) sumCover(ctx context.Context, dim metrics.Dimension, value string, from, to, now time.Time) (metrics.Cell, error) {
	var sum metrics.Cell
	err := s.scanCover(ctx, dim, value, false, from, to, now, func(_ string, _ time.Time, _ metrics.Interval, c *metrics.Cell) error {
		sum.Merge(c)
		return nil
	})
	return sum, err
}

// totalsCover merges the cells of every value of dim over [from, to) into
// one cell per value.
func (s *Service) totalsCover(ctx context.Context, dim metrics.Dimension, from, to, now time.Time) (map[string]*metrics.Cell, error) {
	out := make(map[string]*metrics.Cell)
	var last string
	var cur *metrics.Cell
	err := s.scanCover(ctx, dim, "", true, from, to, now, func(v string, _ time.Time, _ metrics.Interval, c *metrics.Cell) error {
		if cur == nil || v != last {
			if cur = out[v]; cur == nil {
				cur = new(metrics.Cell)
				out[v] = cur
			}
			last = v
		}
		cur.Merge(c)
		return nil
	})
	return out, err
}
