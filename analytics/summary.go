package analytics

import (
	"context"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// SummaryQuery asks for the period in progress.
type SummaryQuery struct {
	Period Period
	// Location decides where days, weeks and months start; nil means the
	// configured one.
	Location *time.Location
}

// Summary is the answer to SummaryQuery (docs/API.md, summary).
//
// The current period runs from its start to now; the previous one is the
// same stretch of the period before (yesterday up to the same time of
// day, last month up to the same day and hour), so a day in progress is
// not compared with a whole day. Rollups are hourly, so the previous
// stretch ends at the end of the hour it reaches (PreviousTo), just as the
// current one includes the hour in progress.
type Summary struct {
	Period       Period    `json:"period"`
	TZ           string    `json:"tz"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	PreviousFrom time.Time `json:"previous_from"`
	PreviousTo   time.Time `json:"previous_to"`
	Current      Stats     `json:"current"`
	Previous     Stats     `json:"previous"`
	Change       Change    `json:"change"`
}

// Change is the relative change of the current period against the
// previous one, (current - previous) / previous: 0.12 is 12% more. A
// field is nil (JSON null) when the previous value is 0.
type Change struct {
	Requests    *float64 `json:"requests"`
	Errors5xx   *float64 `json:"errors_5xx"`
	ErrorRate   *float64 `json:"error_rate"`
	RateLimited *float64 `json:"rate_limited"`
	BytesIn     *float64 `json:"bytes_in"`
	BytesOut    *float64 `json:"bytes_out"`
	P50MS       *float64 `json:"p50_ms"`
	P95MS       *float64 `json:"p95_ms"`
	P99MS       *float64 `json:"p99_ms"`
}

func relChange(cur, prev float64) *float64 {
	if prev == 0 {
		return nil
	}
	return ptr((cur - prev) / prev)
}

func changeOf(cur, prev *Stats) Change {
	return Change{
		Requests:    relChange(float64(cur.Requests), float64(prev.Requests)),
		Errors5xx:   relChange(float64(cur.Errors5xx), float64(prev.Errors5xx)),
		ErrorRate:   relChange(cur.ErrorRate, prev.ErrorRate),
		RateLimited: relChange(float64(cur.RateLimited), float64(prev.RateLimited)),
		BytesIn:     relChange(float64(cur.BytesIn), float64(prev.BytesIn)),
		BytesOut:    relChange(float64(cur.BytesOut), float64(prev.BytesOut)),
		P50MS:       relChange(cur.P50MS, prev.P50MS),
		P95MS:       relChange(cur.P95MS, prev.P95MS),
		P99MS:       relChange(cur.P99MS, prev.P99MS),
	}
}

// Summary answers q at the Service's clock. The totals come from the
// total rollup, unique keys from the key rollup, both over daily cells
// for whole UTC days and hourly cells at the edges; the reads run in
// parallel. Unique keys are counted for the current period only (in
// Current.UniqueKeys; Previous leaves them out): counting them takes a
// pass over every key's cells, and a second pass for the previous period
// would double the cost of the whole summary. It returns a *ParamError
// for an unknown period and the Source's errors.
func (s *Service) Summary(ctx context.Context, q SummaryQuery) (Summary, error) {
	if _, err := ParsePeriod(string(q.Period)); err != nil {
		return Summary{}, err
	}
	loc := q.Location
	if loc == nil {
		loc = s.loc
	}
	now := s.now()
	from := q.Period.Start(now, loc)
	prevFrom := q.Period.Previous(from, loc)
	prevTo := prevFrom.Add(now.Sub(from))
	if prevTo.After(from) {
		prevTo = from
	}
	if t := metrics.Hourly.Truncate(prevTo); t.Before(prevTo) {
		prevTo = t.Add(time.Hour)
	}
	if cut := s.earliestRollup(now); !cut.IsZero() {
		from, prevFrom = maxTime(from, cut), maxTime(prevFrom, cut)
		prevTo = maxTime(prevTo, prevFrom)
	}
	out := Summary{Period: q.Period, TZ: loc.String(), From: from.UTC(), To: now.UTC(),
		PreviousFrom: prevFrom.UTC(), PreviousTo: prevTo.UTC()}

	var (
		wg        sync.WaitGroup
		errs      [3]error
		cur, prev metrics.Cell
		keys      uint64
	)
	wg.Go(func() { cur, errs[0] = s.sumCover(ctx, metrics.DimTotal, "", from, now, now) })
	wg.Go(func() { keys, errs[1] = s.countValues(ctx, metrics.DimKey, from, now, now) })
	if prevFrom.Before(prevTo) {
		wg.Go(func() { prev, errs[2] = s.sumCover(ctx, metrics.DimTotal, "", prevFrom, prevTo, now) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Summary{}, err
		}
	}
	out.Current, out.Previous = StatsOf(&cur), StatsOf(&prev)
	out.Current.UniqueKeys = ptr(keys)
	out.Change = changeOf(&out.Current, &out.Previous)
	return out, nil
}

// countValues counts the distinct values of dim with traffic in
// [from, to): the Source counts them when it is a ValueCounter.
func (s *Service) countValues(ctx context.Context, dim metrics.Dimension, from, to, now time.Time) (uint64, error) {
	if vc, ok := s.src.(ValueCounter); ok {
		parts := s.cover(dim, "", true, from, to, now)
		if len(parts) == 0 {
			return 0, nil
		}
		return vc.CountValues(ctx, dim, parts)
	}
	seen := make(map[string]struct{})
	var last string
	first := true
	err := s.scanCover(ctx, dim, "", true, from, to, now, func(v string, _ time.Time, _ metrics.Interval, _ *metrics.Cell) error {
		if first || v != last {
			seen[v] = struct{}{}
			last, first = v, false
		}
		return nil
	})
	return uint64(len(seen)), err
}
