package analytics

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// Metric is what Top ranks by.
type Metric string

// The metrics.
const (
	MetricRequests  Metric = "requests"
	MetricErrors    Metric = "errors" // 5xx answers
	MetricErrorRate Metric = "error_rate"
	MetricP95       Metric = "p95"
	MetricBytes     Metric = "bytes" // bytes in + out
)

// ParseMetric parses a metric name.
func ParseMetric(s string) (Metric, error) {
	switch m := Metric(s); m {
	case MetricRequests, MetricErrors, MetricErrorRate, MetricP95, MetricBytes:
		return m, nil
	}
	return "", paramErrorf("metric", "must be requests, errors, error_rate, p95 or bytes, got %q", s)
}

func (m Metric) value(s *Stats) float64 {
	switch m {
	case MetricErrors:
		return float64(s.Errors5xx)
	case MetricErrorRate:
		return s.ErrorRate
	case MetricP95:
		return s.P95MS
	case MetricBytes:
		return float64(s.BytesIn) + float64(s.BytesOut)
	}
	return float64(s.Requests)
}

// Limits on a top list.
const (
	DefaultTopLimit = 10
	MaxTopLimit     = 1000
)

// TopQuery asks for the values of a dimension ranked by a metric over a
// range: From/To when either is set (To defaults to now, From to a day
// before To), else the Period in progress (default day).
type TopQuery struct {
	By       GroupBy // route, key, owner or tier
	Metric   Metric  // default requests
	Period   Period
	From, To time.Time
	Location *time.Location // for Period; nil means the configured one
	Limit    int            // default DefaultTopLimit
}

// TopItem is one ranked value with its Stats, flattened in JSON.
type TopItem struct {
	Value string `json:"value"`
	Stats
}

// TopResult is the answer to TopQuery (docs/API.md, top).
type TopResult struct {
	By     GroupBy   `json:"by"`
	Metric Metric    `json:"metric"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Items  []TopItem `json:"items"`
}

// Top ranks the values of q.By, largest first (ties by more requests,
// then by value). It reads daily cells for whole UTC days and hourly cells
// at the edges, so a 30-day top list of 50 routes is about 1,500 cells plus
// the edges. It returns a *ParamError naming a bad parameter, or the
// Source's error.
func (s *Service) Top(ctx context.Context, q TopQuery) (TopResult, error) {
	switch q.By {
	case GroupRoute, GroupKey, GroupOwner, GroupTier:
	default:
		return TopResult{}, paramErrorf("by", "must be route, key, owner or tier, got %q", q.By)
	}
	if q.Metric == "" {
		q.Metric = MetricRequests
	}
	if _, err := ParseMetric(string(q.Metric)); err != nil {
		return TopResult{}, err
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultTopLimit
	case q.Limit < 0 || q.Limit > MaxTopLimit:
		return TopResult{}, paramErrorf("limit", "must be from 1 to %d, got %d", MaxTopLimit, q.Limit)
	}
	now := s.now()
	from, to, err := s.resolveRange(q.Period, q.From, q.To, q.Location, now)
	if err != nil {
		return TopResult{}, err
	}
	items, err := s.topItems(ctx, q, from, to, now)
	if err != nil {
		return TopResult{}, err
	}
	slices.SortFunc(items, func(a, b TopItem) int {
		if c := cmp.Compare(q.Metric.value(&b.Stats), q.Metric.value(&a.Stats)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	if len(items) > q.Limit {
		items = items[:q.Limit]
	}
	return TopResult{By: q.By, Metric: q.Metric, From: from.UTC(), To: to.UTC(), Items: items}, nil
}

// topItems returns the candidates of q's top list over [from, to): every
// value of q.By, or, ranking by requests from a TopCounter, the top
// q.Limit values it ranked, the same ones Top's sort keeps.
func (s *Service) topItems(ctx context.Context, q TopQuery, from, to, now time.Time) ([]TopItem, error) {
	dim := q.By.dimension()
	if tc, ok := s.src.(TopCounter); ok && q.Metric == MetricRequests {
		items := make([]TopItem, 0, q.Limit)
		parts := s.cover(dim, "", true, from, to, now)
		if len(parts) == 0 {
			return items, nil
		}
		err := tc.TopByCount(ctx, dim, parts, q.Limit, func(v string, c *metrics.Cell) error {
			items = append(items, TopItem{Value: v, Stats: StatsOf(c)})
			return nil
		})
		return items, err
	}
	cells, err := s.totalsCover(ctx, dim, from, to, now)
	if err != nil {
		return nil, err
	}
	items := make([]TopItem, 0, len(cells))
	for v, c := range cells {
		items = append(items, TopItem{Value: v, Stats: StatsOf(c)})
	}
	return items, nil
}

// resolveRange turns a period or an explicit range into [from, to),
// clipped to what the rollups keep.
func (s *Service) resolveRange(p Period, from, to time.Time, loc *time.Location, now time.Time) (time.Time, time.Time, error) {
	if loc == nil {
		loc = s.loc
	}
	if from.IsZero() && to.IsZero() {
		if p == "" {
			p = PeriodDay
		}
		if _, err := ParsePeriod(string(p)); err != nil {
			return from, to, err
		}
		from, to = p.CurrentRange(now, loc)
	} else {
		if to.IsZero() || to.After(now) {
			to = now
		}
		if from.IsZero() {
			from = to.Add(-24 * time.Hour)
		}
	}
	if !from.Before(to) {
		return from, to, paramErrorf("from", "must be before to (%s)", to.UTC().Format(time.RFC3339))
	}
	if cut := s.earliestRollup(now); !cut.IsZero() && from.Before(cut) {
		if !to.After(cut) {
			return from, to, paramErrorf("to", "the whole range is older than retention keeps (rollups from %s)", cut.UTC().Format(time.RFC3339))
		}
		from = cut
	}
	return from, to, nil
}
