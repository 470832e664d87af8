package analytics

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
)

// KeyUsageQuery names a key and the tier its buckets are sized by.
type KeyUsageQuery struct {
	KeyID string
	Tier  string
}

// BucketUsage is one live token bucket.
type BucketUsage struct {
	Limit        int64 `json:"limit"`
	Remaining    int64 `json:"remaining"`
	ResetSeconds int64 `json:"reset_seconds"` // until full again, rounded up; 0 when full
}

// UsageCounts are a key's requests from the rollups: this UTC hour, and
// today and this month in the configured time zone.
type UsageCounts struct {
	ThisHour  uint64 `json:"this_hour"`
	Today     uint64 `json:"today"`
	ThisMonth uint64 `json:"this_month"`
}

// KeyUsage is the answer to KeyUsageQuery (docs/API.md, per-key usage).
// Hour and Minute are nil (null) when the Service has no Peeker.
type KeyUsage struct {
	KeyID               string       `json:"key_id"`
	Tier                string       `json:"tier"`
	Hour                *BucketUsage `json:"hour"`
	Minute              *BucketUsage `json:"minute"`
	Usage               UsageCounts  `json:"usage"`
	MonthlyQuota        int64        `json:"monthly_quota"`
	MonthlyRemaining    *int64       `json:"monthly_remaining"` // nil without a quota
	ActiveCalendarRules []string     `json:"active_calendar_rules"`
}

// KeyUsage reads a key's live buckets (without consuming anything) and
// its usage from the key rollup. Counting all requests, refused ones
// included, the usage counts may exceed what the limiter admitted; the
// monthly quota and what is left of it are the limiter's own figures. It
// returns the Source's errors.
func (s *Service) KeyUsage(ctx context.Context, q KeyUsageQuery) (KeyUsage, error) {
	now := s.now()
	out := KeyUsage{KeyID: q.KeyID, Tier: q.Tier, ActiveCalendarRules: []string{}}
	if s.limits != nil {
		u := s.limits.Peek(now, limiter.KeySubject(q.KeyID), q.Tier)
		out.Hour, out.Minute = bucketUsage(u.Hour.Limit, u.Hour.Remaining, u.Hour.Reset), bucketUsage(u.Minute.Limit, u.Minute.Remaining, u.Minute.Reset)
		if u.MonthlyQuota > 0 {
			out.MonthlyQuota = u.MonthlyQuota
			out.MonthlyRemaining = ptr(max(u.MonthlyQuota-u.MonthlyUsed, 0))
		}
	}
	if s.calendar != nil {
		if rules := s.calendar.Active(now); rules != nil {
			out.ActiveCalendarRules = rules
		}
	}
	ranges := [3]time.Time{now.Truncate(time.Hour), PeriodDay.Start(now, s.loc), PeriodMonth.Start(now, s.loc)}
	var counts [3]uint64
	var errs [3]error
	var wg sync.WaitGroup
	for i, from := range ranges {
		wg.Go(func() {
			c, err := s.sumCover(ctx, metrics.DimKey, q.KeyID, billingHour(from), now, now)
			counts[i], errs[i] = c.Count, err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return KeyUsage{}, err
		}
	}
	out.Usage = UsageCounts{ThisHour: counts[0], Today: counts[1], ThisMonth: counts[2]}
	return out, nil
}

func bucketUsage(limit, remaining int64, reset time.Duration) *BucketUsage {
	return &BucketUsage{Limit: limit, Remaining: remaining, ResetSeconds: int64(math.Ceil(reset.Seconds()))}
}

// billingHour assigns an instant to the hourly cell that starts at or
// before it, so that in a zone with a half-hour offset every cell belongs
// to exactly one local day or month and consecutive months never count
// an hour twice.
func billingHour(t time.Time) time.Time { return t.Truncate(time.Hour) }

// BillingQuery asks for a calendar month's usage per owner or per key.
type BillingQuery struct {
	// Month is "2006-01", a month in the configured time zone.
	Month   string
	GroupBy GroupBy // GroupOwner (default) or GroupKey
	// OwnerOf names a key's owner for per-key rows; nil leaves it empty.
	// Per-key rows carry the key's owner now, while per-owner rows count
	// each request under the owner it had then.
	OwnerOf func(keyID string) string
}

// BillingRow is one owner's (or key's) usage in the month.
type BillingRow struct {
	OwnerID     string `json:"owner_id"`
	KeyID       string `json:"key_id,omitempty"`
	Requests    uint64 `json:"requests"`
	Errors4xx   uint64 `json:"errors_4xx"`
	Errors5xx   uint64 `json:"errors_5xx"`
	RateLimited uint64 `json:"rate_limited"`
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
}

func (r *BillingRow) add(o *BillingRow) {
	r.Requests += o.Requests
	r.Errors4xx += o.Errors4xx
	r.Errors5xx += o.Errors5xx
	r.RateLimited += o.RateLimited
	r.BytesIn += o.BytesIn
	r.BytesOut += o.BytesOut
}

// BillingReport is the answer to BillingQuery (docs/API.md, usage).
// From and To are the hours covered: the local month, cut at now for the
// month in progress and at retention for an old one. Totals is the sum of
// the rows (traffic without an owner or key is not billed to anyone).
type BillingReport struct {
	Month   string       `json:"month"`
	TZ      string       `json:"tz"`
	From    time.Time    `json:"from"`
	To      time.Time    `json:"to"`
	GroupBy GroupBy      `json:"group_by"`
	Rows    []BillingRow `json:"rows"`
	Totals  BillingRow   `json:"totals"`
}

// Billing sums the owner (or key) rollup over the local calendar month:
// exact, whatever the raw sample rate, because rollups count every
// request. Rows are sorted by owner, then key. It returns a *ParamError
// for a malformed, future or expired month, or the Source's error.
func (s *Service) Billing(ctx context.Context, q BillingQuery) (BillingReport, error) {
	if q.GroupBy == GroupNone {
		q.GroupBy = GroupOwner
	}
	if q.GroupBy != GroupOwner && q.GroupBy != GroupKey {
		return BillingReport{}, paramErrorf("group_by", "must be owner or key, got %q", q.GroupBy)
	}
	m, err := time.ParseInLocation("2006-01", q.Month, s.loc)
	if err != nil {
		return BillingReport{}, paramErrorf("month", "must be a month such as 2026-11, got %q", q.Month)
	}
	now := s.now()
	from, to := billingHour(m), billingHour(m.AddDate(0, 1, 0))
	if !from.Before(now) {
		return BillingReport{}, paramErrorf("month", "%s has not started yet", q.Month)
	}
	if cut := s.earliestRollup(now); !cut.IsZero() && from.Before(cut) {
		if !to.After(cut) {
			return BillingReport{}, paramErrorf("month", "%s is older than retention keeps (rollups from %s)", q.Month, cut.UTC().Format(time.RFC3339))
		}
		from = cut
	}
	shownTo := to
	if now.Before(to) {
		shownTo = now
	}
	dim := metrics.DimOwner
	if q.GroupBy == GroupKey {
		dim = metrics.DimKey
	}
	cells, err := s.totalsCover(ctx, dim, from, to, now)
	if err != nil {
		return BillingReport{}, err
	}
	out := BillingReport{Month: q.Month, TZ: s.loc.String(), From: from.UTC(), To: shownTo.UTC(), GroupBy: q.GroupBy,
		Rows: make([]BillingRow, 0, len(cells))}
	for v, c := range cells {
		row := BillingRow{Requests: c.Count, Errors4xx: c.Status4xx, Errors5xx: c.Status5xx, RateLimited: c.RateLimited,
			BytesIn: c.BytesIn, BytesOut: c.BytesOut}
		if q.GroupBy == GroupKey {
			row.KeyID = v
			if q.OwnerOf != nil {
				row.OwnerID = q.OwnerOf(v)
			}
		} else {
			row.OwnerID = v
		}
		out.Rows = append(out.Rows, row)
		out.Totals.add(&row)
	}
	slices.SortFunc(out.Rows, func(a, b BillingRow) int {
		return cmp.Or(cmp.Compare(a.OwnerID, b.OwnerID), cmp.Compare(a.KeyID, b.KeyID))
	})
	return out, nil
}
