package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// testNow is the clock of the service tests: Friday 2026-11-27 15:30 UTC
// (10:30 in New York).
var testNow = time.Date(2026, 11, 27, 15, 30, 0, 0, time.UTC)

var testKeys = []struct{ id, owner, tier string }{
	{"key_a1", "org_a", "free"}, {"key_a2", "org_a", "basic"}, {"key_b1", "org_b", "basic"},
	{"key_c1", "org_c", "premium"}, {"", "", ""}, // public traffic: no key, owner or tier
}

var testRoutes = []string{"/api/forms", "/api/forms/*", "/api/guests", ""}

// knownTraffic is the test data: one request every 37 minutes from
// 20 October to now, and one every 20 seconds in the last two hours, with
// keys, owners, tiers, routes, statuses, latencies and sizes that cycle
// with the record's index, so every split has traffic.
func knownTraffic() []metrics.Record {
	var recs []metrics.Record
	add := func(i int, t time.Time) {
		k := testKeys[i%len(testKeys)]
		status, code := 200, decision.Valid
		switch {
		case i%13 == 0:
			status = 503
		case i%7 == 0:
			status, code = 429, decision.RateLimited
		case i%17 == 0:
			status, code = 401, decision.Expired
		case i%5 == 0:
			status = 404
		}
		method := "GET"
		if i%3 == 0 {
			method = "POST"
		}
		recs = append(recs, metrics.Record{
			Time: t, RequestID: "t-" + strconv.Itoa(len(recs)), Method: method, Route: testRoutes[(i/3)%len(testRoutes)],
			Path: "/p/" + strconv.Itoa(i), Status: status, Latency: time.Duration((i*7)%200+1) * time.Millisecond,
			RequestBytes: int64(i % 100), ResponseBytes: int64(1000 + i%500), KeyID: k.id, OwnerID: k.owner, Tier: k.tier,
			ClientIP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), ErrorCategory: metrics.CategorizeError(status, code),
			Decision: code,
		})
	}
	i := 0
	for t := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC); t.Before(testNow); t = t.Add(37 * time.Minute) {
		add(i, t)
		i++
	}
	for t := testNow.Add(-2 * time.Hour); t.Before(testNow); t = t.Add(20 * time.Second) {
		add(i, t)
		i++
	}
	slices.SortFunc(recs, func(a, b metrics.Record) int { return a.Time.Compare(b.Time) })
	return recs
}

// newTestService writes recs through a real Recorder into a real store.
func newTestService(t testing.TB, recs []metrics.Record, opts analytics.Options) *analytics.Service {
	t.Helper()
	st := storetest.MustOpen(t)
	rec, err := metrics.New(metrics.Options{Store: st, BufferSize: len(recs) + 1, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if n := rec.RecordBatch(recs); n != len(recs) {
		t.Fatalf("recorder took %d of %d", n, len(recs))
	}
	rec.Stop()
	opts.Source = metrics.NewReader(st)
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	svc, err := analytics.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// oracle sums the records in [from, to) that keep admits, the slow and
// obvious way, into the Stats an answer must show.
func oracle(recs []metrics.Record, from, to time.Time, keep func(*metrics.Record) bool) analytics.Stats {
	var c metrics.Cell
	for i := range recs {
		r := &recs[i]
		if !r.Time.Before(from) && r.Time.Before(to) && (keep == nil || keep(r)) {
			c.Add(r)
		}
	}
	return analytics.StatsOf(&c)
}

func uniqueKeys(recs []metrics.Record, from, to time.Time) uint64 {
	seen := map[string]bool{}
	for _, r := range recs {
		if r.KeyID != "" && !r.Time.Before(from) && r.Time.Before(to) {
			seen[r.KeyID] = true
		}
	}
	return uint64(len(seen))
}

func sameStats(t *testing.T, what string, got, want analytics.Stats) {
	t.Helper()
	got.UniqueKeys, want.UniqueKeys = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSummaryMatchesTheRecords(t *testing.T) {
	recs := knownTraffic()
	svc := newTestService(t, recs, analytics.Options{})
	ny := mustLoc(t, "America/New_York")
	cases := []struct {
		period             analytics.Period
		loc                *time.Location
		from, prevFrom     time.Time
		prevTo             time.Time // the same stretch of the previous period, to the end of its hour
		wantChangeRequests bool
	}{
		{analytics.PeriodHour, time.UTC, time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), true},
		{analytics.PeriodDay, time.UTC, time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC), true},
		{analytics.PeriodDay, ny, time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 16, 0, 0, 0, time.UTC), true},
		{analytics.PeriodWeek, time.UTC, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC), true},
		{analytics.PeriodMonth, time.UTC, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 27, 16, 0, 0, 0, time.UTC), true},
	}
	for _, tc := range cases {
		t.Run(string(tc.period)+"/"+tc.loc.String(), func(t *testing.T) {
			s, err := svc.Summary(context.Background(), analytics.SummaryQuery{Period: tc.period, Location: tc.loc})
			if err != nil {
				t.Fatal(err)
			}
			if !s.From.Equal(tc.from) || !s.To.Equal(testNow) || !s.PreviousFrom.Equal(tc.prevFrom) || !s.PreviousTo.Equal(tc.prevTo) {
				t.Fatalf("ranges %s..%s, previous %s..%s", s.From, s.To, s.PreviousFrom, s.PreviousTo)
			}
			cur, prev := oracle(recs, tc.from, testNow, nil), oracle(recs, tc.prevFrom, tc.prevTo, nil)
			sameStats(t, "current", s.Current, cur)
			sameStats(t, "previous", s.Previous, prev)
			if s.Current.UniqueKeys == nil || *s.Current.UniqueKeys != uniqueKeys(recs, tc.from, testNow) {
				t.Errorf("unique keys %v, want %d", s.Current.UniqueKeys, uniqueKeys(recs, tc.from, testNow))
			}
			if s.TZ != tc.loc.String() || s.Period != tc.period {
				t.Errorf("period %q tz %q", s.Period, s.TZ)
			}
			if prev.Requests == 0 || s.Change.Requests == nil {
				t.Fatalf("no previous traffic to compare with: %+v", s.Change)
			}
			want := (float64(cur.Requests) - float64(prev.Requests)) / float64(prev.Requests)
			if *s.Change.Requests != want {
				t.Errorf("change.requests %v, want %v", *s.Change.Requests, want)
			}
		})
	}
	if _, err := svc.Summary(context.Background(), analytics.SummaryQuery{Period: "year"}); !isParamError(err, "period") {
		t.Errorf("period=year: %v", err)
	}
}

func isParamError(err error, param string) bool {
	var pe *analytics.ParamError
	return errors.As(err, &pe) && pe.Param == param && errors.Is(err, analytics.ErrInvalidQuery)
}

// groupOf mirrors what a group_by splits on, for the oracle.
func groupOf(g analytics.GroupBy, r *metrics.Record) string {
	switch g {
	case analytics.GroupRoute:
		return r.Route
	case analytics.GroupKey:
		return r.KeyID
	case analytics.GroupOwner:
		return r.OwnerID
	case analytics.GroupTier:
		return r.Tier
	case analytics.GroupStatus:
		return strconv.Itoa(r.StatusClass()) + "xx"
	}
	return "all"
}

// checkSeries compares every point of every group with the oracle, and
// checks that the groups are exactly those with traffic.
func checkSeries(t *testing.T, recs []metrics.Record, res analytics.SeriesResult, f analytics.Filter, bounds []time.Time) {
	t.Helper()
	keep := func(g string) func(*metrics.Record) bool {
		return func(r *metrics.Record) bool {
			return (f.Route == "" || r.Route == f.Route) && (f.KeyID == "" || r.KeyID == f.KeyID) &&
				(f.OwnerID == "" || r.OwnerID == f.OwnerID) && (f.Tier == "" || r.Tier == f.Tier) &&
				(res.GroupBy == analytics.GroupNone || groupOf(res.GroupBy, r) == g)
		}
	}
	wantGroups := map[string]bool{}
	for i := range recs {
		r := &recs[i]
		if !r.Time.Before(res.From) && r.Time.Before(res.To) && keep(groupOf(res.GroupBy, r))(r) && groupOf(res.GroupBy, r) != "" {
			wantGroups[groupOf(res.GroupBy, r)] = true
		}
	}
	if res.GroupBy == analytics.GroupNone {
		wantGroups = map[string]bool{"all": true}
	}
	var got []string
	for _, s := range res.Series {
		got = append(got, s.Group)
		if len(s.Points) != len(bounds)-1 {
			t.Fatalf("group %q: %d points, want %d", s.Group, len(s.Points), len(bounds)-1)
		}
		for i, p := range s.Points {
			if !p.T.Equal(bounds[i]) {
				t.Fatalf("group %q point %d at %s, want %s", s.Group, i, p.T, bounds[i])
			}
			sameStats(t, fmt.Sprintf("group %q at %s", s.Group, p.T), p.Stats, oracle(recs, bounds[i], bounds[i+1], keep(s.Group)))
		}
	}
	if len(got) != len(wantGroups) || !slices.IsSorted(got) {
		t.Errorf("groups %q, want the %d of %v, sorted", got, len(wantGroups), wantGroups)
	}
}

func hourBounds(from, to time.Time) []time.Time {
	var b []time.Time
	for t := from; !t.After(to); t = t.Add(time.Hour) {
		b = append(b, t)
	}
	return b
}

func dayBounds(from time.Time, n int, loc *time.Location) []time.Time {
	var b []time.Time
	l := from.In(loc)
	for i := 0; i <= n; i++ {
		b = append(b, time.Date(l.Year(), l.Month(), l.Day()+i, 0, 0, 0, 0, loc).UTC())
	}
	return b
}

func TestSeriesMatchesTheRecords(t *testing.T) {
	recs := knownTraffic()
	svc := newTestService(t, recs, analytics.Options{})
	ctx := context.Background()
	from := time.Date(2026, 11, 25, 10, 20, 0, 0, time.UTC)
	hours := hourBounds(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC))
	for _, g := range []analytics.GroupBy{analytics.GroupNone, analytics.GroupRoute, analytics.GroupKey, analytics.GroupOwner, analytics.GroupTier, analytics.GroupStatus} {
		t.Run("hour/group_by="+string(g), func(t *testing.T) {
			res, err := svc.Series(ctx, analytics.SeriesQuery{From: from, Interval: analytics.IntervalHour, GroupBy: g})
			if err != nil {
				t.Fatal(err)
			}
			checkSeries(t, recs, res, analytics.Filter{}, hours)
		})
	}
	filters := []analytics.Filter{{Route: "/api/forms/*"}, {KeyID: "key_b1"}, {OwnerID: "org_a"}, {Tier: "basic"}, {KeyID: "key_never_seen"}}
	for _, f := range filters {
		t.Run(fmt.Sprintf("hour/filter=%+v", f), func(t *testing.T) {
			res, err := svc.Series(ctx, analytics.SeriesQuery{From: from, Interval: analytics.IntervalHour, Filter: f})
			if err != nil {
				t.Fatal(err)
			}
			checkSeries(t, recs, res, f, hours)
		})
	}
	t.Run("hour/filter and group on the same dimension", func(t *testing.T) {
		f := analytics.Filter{Tier: "basic"}
		res, err := svc.Series(ctx, analytics.SeriesQuery{From: from, Interval: analytics.IntervalHour, GroupBy: analytics.GroupTier, Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Series) != 1 || res.Series[0].Group != "basic" {
			t.Fatalf("series %+v", res.Series)
		}
		checkSeries(t, recs, res, f, hours)
	})

	// Days: UTC days from daily cells, New York days from hourly cells.
	// The boundaries differ; the traffic of the whole range does not.
	ny := mustLoc(t, "America/New_York")
	dayFrom := time.Date(2026, 10, 18, 12, 0, 0, 0, time.UTC)
	totals := map[string]uint64{}
	for _, loc := range []*time.Location{time.UTC, ny} {
		for _, g := range []analytics.GroupBy{analytics.GroupNone, analytics.GroupOwner} {
			t.Run("day/"+loc.String()+"/group_by="+string(g), func(t *testing.T) {
				res, err := svc.Series(ctx, analytics.SeriesQuery{From: dayFrom, Interval: analytics.IntervalDay, Location: loc, GroupBy: g})
				if err != nil {
					t.Fatal(err)
				}
				bounds := dayBounds(dayFrom, 41, loc) // 18 Oct … 27 Nov: 41 days
				if res.TZ != loc.String() || !res.From.Equal(bounds[0]) || !res.To.Equal(bounds[41]) {
					t.Fatalf("tz %s range %s..%s, want %s..%s", res.TZ, res.From, res.To, bounds[0], bounds[41])
				}
				checkSeries(t, recs, res, analytics.Filter{}, bounds)
				if g == analytics.GroupNone {
					for _, p := range res.Series[0].Points {
						totals[loc.String()] += p.Requests
					}
				}
			})
		}
	}
	if totals["UTC"] != uint64(len(recs)) || totals["America/New_York"] != uint64(len(recs)) {
		t.Errorf("day totals %v, want %d in both zones", totals, len(recs))
	}

	// Minutes come from raw records, where filters combine freely.
	minuteFrom := testNow.Add(-30 * time.Minute)
	var minutes []time.Time
	for m := minuteFrom; !m.After(testNow); m = m.Add(time.Minute) {
		minutes = append(minutes, m)
	}
	for _, tc := range []struct {
		g analytics.GroupBy
		f analytics.Filter
	}{{analytics.GroupNone, analytics.Filter{}}, {analytics.GroupRoute, analytics.Filter{OwnerID: "org_a"}},
		{analytics.GroupStatus, analytics.Filter{Route: "/api/forms", Tier: "basic"}}, {analytics.GroupKey, analytics.Filter{KeyID: "key_c1"}}} {
		t.Run(fmt.Sprintf("minute/group_by=%s/filter=%+v", tc.g, tc.f), func(t *testing.T) {
			res, err := svc.Series(ctx, analytics.SeriesQuery{From: minuteFrom, To: testNow, Interval: analytics.IntervalMinute, GroupBy: tc.g, Filter: tc.f})
			if err != nil {
				t.Fatal(err)
			}
			checkSeries(t, recs, res, tc.f, minutes)
		})
	}
}

func TestSeriesRefusesWhatRollupsCannotAnswer(t *testing.T) {
	svc := newTestService(t, knownTraffic(), analytics.Options{Retention: analytics.Retention{RawDays: 3, HourlyDays: 30}})
	cases := []struct {
		q     analytics.SeriesQuery
		param string
	}{
		{analytics.SeriesQuery{Interval: "week"}, "interval"},
		{analytics.SeriesQuery{Interval: analytics.IntervalHour, GroupBy: "country"}, "group_by"},
		{analytics.SeriesQuery{Interval: analytics.IntervalHour, Filter: analytics.Filter{Route: "/a", KeyID: "k"}}, "key_id"},
		{analytics.SeriesQuery{Interval: analytics.IntervalDay, GroupBy: analytics.GroupTier, Filter: analytics.Filter{Route: "/a"}}, "group_by"},
		{analytics.SeriesQuery{Interval: analytics.IntervalHour, From: testNow, To: testNow.Add(-time.Hour)}, "from"},
		{analytics.SeriesQuery{Interval: analytics.IntervalMinute, From: testNow.Add(-48 * time.Hour)}, "from"},
		{analytics.SeriesQuery{Interval: analytics.IntervalMinute, From: testNow.AddDate(0, 0, -20), To: testNow.AddDate(0, 0, -19)}, "to"},
	}
	for _, tc := range cases {
		if _, err := svc.Series(context.Background(), tc.q); !isParamError(err, tc.param) {
			t.Errorf("%+v: %v, want a ParamError on %s", tc.q, err, tc.param)
		}
	}
	// A range reaching past retention is cut to it, and says so.
	res, err := svc.Series(context.Background(), analytics.SeriesQuery{Interval: analytics.IntervalHour, From: testNow.AddDate(0, 0, -60)})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC); !res.From.Equal(want) {
		t.Errorf("from %s, want the oldest hour kept, %s", res.From, want)
	}
}

func TestTopMatchesTheRecords(t *testing.T) {
	recs := knownTraffic()
	svc := newTestService(t, recs, analytics.Options{})
	from, to := time.Date(2026, 11, 3, 7, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, by := range []analytics.GroupBy{analytics.GroupRoute, analytics.GroupKey, analytics.GroupOwner, analytics.GroupTier} {
		for _, m := range []analytics.Metric{analytics.MetricRequests, analytics.MetricErrors, analytics.MetricErrorRate, analytics.MetricP95, analytics.MetricBytes} {
			t.Run(string(by)+"/"+string(m), func(t *testing.T) {
				res, err := svc.Top(context.Background(), analytics.TopQuery{By: by, Metric: m, From: from, To: to, Limit: 3})
				if err != nil {
					t.Fatal(err)
				}
				values := map[string]bool{}
				for i := range recs {
					if v := groupOf(by, &recs[i]); v != "" {
						values[v] = true
					}
				}
				var want []analytics.TopItem
				for v := range values {
					st := oracle(recs, from, to, func(r *metrics.Record) bool { return groupOf(by, r) == v })
					want = append(want, analytics.TopItem{Value: v, Stats: st})
				}
				metric := func(s analytics.Stats) float64 {
					switch m {
					case analytics.MetricErrors:
						return float64(s.Errors5xx)
					case analytics.MetricErrorRate:
						return s.ErrorRate
					case analytics.MetricP95:
						return s.P95MS
					case analytics.MetricBytes:
						return float64(s.BytesIn + s.BytesOut)
					}
					return float64(s.Requests)
				}
				slices.SortFunc(want, func(a, b analytics.TopItem) int {
					if metric(a.Stats) != metric(b.Stats) {
						if metric(a.Stats) > metric(b.Stats) {
							return -1
						}
						return 1
					}
					if a.Requests != b.Requests {
						if a.Requests > b.Requests {
							return -1
						}
						return 1
					}
					if a.Value < b.Value {
						return -1
					}
					return 1
				})
				want = want[:min(3, len(want))]
				if len(res.Items) != len(want) {
					t.Fatalf("%d items, want %d", len(res.Items), len(want))
				}
				for i := range want {
					if res.Items[i].Value != want[i].Value {
						t.Fatalf("item %d is %q, want %q", i, res.Items[i].Value, want[i].Value)
					}
					sameStats(t, want[i].Value, res.Items[i].Stats, want[i].Stats)
				}
			})
		}
	}
	for _, tc := range []struct {
		q     analytics.TopQuery
		param string
	}{{analytics.TopQuery{By: "status"}, "by"}, {analytics.TopQuery{By: analytics.GroupKey, Metric: "p42"}, "metric"},
		{analytics.TopQuery{By: analytics.GroupKey, Limit: 5000}, "limit"}, {analytics.TopQuery{By: analytics.GroupKey, Period: "decade"}, "period"}} {
		if _, err := svc.Top(context.Background(), tc.q); !isParamError(err, tc.param) {
			t.Errorf("%+v: %v", tc.q, err)
		}
	}
}

func TestBillingIsExactForTheLocalMonth(t *testing.T) {
	recs := knownTraffic()
	ny := mustLoc(t, "America/New_York")
	svc := newTestService(t, recs, analytics.Options{Location: ny})
	owners := map[string]string{}
	for _, k := range testKeys {
		owners[k.id] = k.owner
	}
	// October in New York: 1 Oct 04:00 UTC (EDT) to 1 Nov 04:00 UTC.
	from, to := time.Date(2026, 10, 1, 4, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)
	for _, g := range []analytics.GroupBy{analytics.GroupOwner, analytics.GroupKey} {
		rep, err := svc.Billing(context.Background(), analytics.BillingQuery{Month: "2026-10", GroupBy: g,
			OwnerOf: func(id string) string { return owners[id] }})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.From.Equal(from) || !rep.To.Equal(to) || rep.TZ != "America/New_York" {
			t.Fatalf("%s: range %s..%s tz %s", g, rep.From, rep.To, rep.TZ)
		}
		var total analytics.BillingRow
		for _, row := range rep.Rows {
			st := oracle(recs, from, to, func(r *metrics.Record) bool {
				return r.OwnerID == row.OwnerID && (g == analytics.GroupOwner || r.KeyID == row.KeyID)
			})
			want := analytics.BillingRow{OwnerID: row.OwnerID, KeyID: row.KeyID, Requests: st.Requests, Errors4xx: st.Errors4xx,
				Errors5xx: st.Errors5xx, RateLimited: st.RateLimited, BytesIn: st.BytesIn, BytesOut: st.BytesOut}
			if row != want || row.Requests == 0 {
				t.Errorf("%s row %+v, want %+v", g, row, want)
			}
			total.Requests += row.Requests
		}
		keyed := oracle(recs, from, to, func(r *metrics.Record) bool { return r.KeyID != "" })
		if want := map[analytics.GroupBy]int{analytics.GroupOwner: 3, analytics.GroupKey: 4}[g]; len(rep.Rows) != want {
			t.Errorf("%s: %d rows, want %d", g, len(rep.Rows), want)
		}
		if rep.Totals.Requests != keyed.Requests || total.Requests != keyed.Requests {
			t.Errorf("%s: totals %d, rows %d, want %d", g, rep.Totals.Requests, total.Requests, keyed.Requests)
		}
	}
	for _, tc := range []struct{ month, group string }{{"2026-13", "owner"}, {"Oct 2026", "owner"}, {"2027-01", "owner"}, {"2026-10", "tier"}} {
		_, err := svc.Billing(context.Background(), analytics.BillingQuery{Month: tc.month, GroupBy: analytics.GroupBy(tc.group)})
		param := "month"
		if tc.group == "tier" {
			param = "group_by"
		}
		if !isParamError(err, param) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

func TestKeyUsageReadsBucketsAndRollups(t *testing.T) {
	recs := knownTraffic()
	ny := mustLoc(t, "America/New_York")
	lim, err := limiter.New(limiter.Options{
		Tiers: map[string]limiter.Tier{"basic": {RequestsPerHour: 500, BurstPerMinute: 25, MonthlyQuota: 10000}},
		Now:   func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		lim.AllowAt(testNow, limiter.Request{Subject: "key_b1", Tier: "basic"})
	}
	cal, err := limiter.NewCalendar(ny, []limiter.Rule{{Name: "black-friday", Dates: []limiter.DateRange{{From: limiter.Date{Year: 2026, Month: 11, Day: 27}, To: limiter.Date{Year: 2026, Month: 11, Day: 27}}}, LimitMultiplier: 1}})
	if err != nil {
		t.Fatal(err)
	}
	svc := newTestService(t, recs, analytics.Options{Location: ny, Limits: lim, Calendar: cal})
	u, err := svc.KeyUsage(context.Background(), analytics.KeyUsageQuery{KeyID: "key_b1", Tier: "basic"})
	if err != nil {
		t.Fatal(err)
	}
	isKey := func(r *metrics.Record) bool { return r.KeyID == "key_b1" }
	want := analytics.UsageCounts{
		ThisHour:  oracle(recs, time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), testNow, isKey).Requests,
		Today:     oracle(recs, time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC), testNow, isKey).Requests,
		ThisMonth: oracle(recs, time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC), testNow, isKey).Requests,
	}
	if u.Usage != want || want.ThisHour == 0 {
		t.Errorf("usage %+v, want %+v", u.Usage, want)
	}
	if u.Hour == nil || *u.Hour != (analytics.BucketUsage{Limit: 500, Remaining: 497, ResetSeconds: 22}) {
		t.Errorf("hour bucket %+v", u.Hour)
	}
	if u.Minute == nil || u.Minute.Limit != 25 || u.Minute.Remaining != 22 || u.Minute.ResetSeconds != 8 {
		t.Errorf("minute bucket %+v", u.Minute)
	}
	if u.MonthlyQuota != 10000 || u.MonthlyRemaining == nil || *u.MonthlyRemaining != 9997 {
		t.Errorf("quota %d remaining %v", u.MonthlyQuota, u.MonthlyRemaining)
	}
	if !slices.Equal(u.ActiveCalendarRules, []string{"black-friday"}) {
		t.Errorf("calendar rules %v", u.ActiveCalendarRules)
	}
}
