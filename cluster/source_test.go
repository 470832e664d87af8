package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	flagpkg "flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

var updateGolden = flagpkg.Bool("update", false, "rewrite the golden files in testdata/ from the bbolt reader's answers")

// sourcePair is the same data set behind the two analytics readers: one
// instance's bbolt file, and the PostgreSQL it shipped to.
type sourcePair struct {
	bbolt, pg *analytics.Service
	src       *cluster.Source
}

// newSourcePair records the data set through real Recorders into two
// real data files, ships one to a fresh database and builds a Service
// over the other file and over PostgreSQL. The time zone is not UTC, so local days and months are not UTC
// ones.
func newSourcePair(t *testing.T) *sourcePair {
	t.Helper()
	url := pg.Database(t)
	// The bbolt side is a file of its own that never ships, so what
	// shipping does to the shipper's file (deleting shipped raw blocks)
	// changes nothing here. The same flushes on two fresh files give the
	// same blocks under the same sequences.
	whole := newShipNode(t, url, "whole", nil)
	recordSourceData(t, whole.rec, nil)
	n := newShipNode(t, url, "node-a", nil)
	recordSourceData(t, n.rec, nil)
	n.drain(t)
	return pairOver(t, whole.rd, newSource(t, n.cluster))
}

// pairOver builds the two Services of a sourcePair.
func pairOver(t *testing.T, bbolt analytics.Source, src *cluster.Source) *sourcePair {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return sourceNow }
	p := &sourcePair{src: src}
	if p.bbolt, err = analytics.New(analytics.Options{Source: bbolt, Location: loc, Now: now}); err != nil {
		t.Fatal(err)
	}
	if p.pg, err = analytics.New(analytics.Options{Source: p.src, Location: loc, Now: now}); err != nil {
		t.Fatal(err)
	}
	return p
}

// sourceCase is one analytics query, run against each Service.
type sourceCase struct {
	name string
	run  func(ctx context.Context, svc *analytics.Service) (any, error)
}

// compareSources runs each case against both Services: their answers'
// JSON must be equal, and the bbolt reader's must equal its golden file
// (testdata/source/NAME.json), so a change to either reader shows.
func compareSources(t *testing.T, p *sourcePair, cases []sourceCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxFor(t, time.Minute)
			// A refused query is an answer too: both must refuse it alike.
			want, err := c.run(ctx, p.bbolt)
			if err != nil {
				want = map[string]string{"error": err.Error()}
			}
			got, err := c.run(ctx, p.pg)
			if err != nil {
				got = map[string]string{"error": err.Error()}
			}
			wantJSON, gotJSON := indentJSON(t, want), indentJSON(t, got)
			if !bytes.Equal(wantJSON, gotJSON) {
				t.Errorf("PostgreSQL reader differs from the bbolt reader:\n%s", firstDifference(wantJSON, gotJSON))
			}
			if g, ok := want.(interface{ golden() any }); ok {
				wantJSON = indentJSON(t, g.golden())
			}
			checkGolden(t, c.name, wantJSON)
		})
	}
}

func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// firstDifference shows the lines around where want and got first differ.
func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		if i >= len(w) || i >= len(g) || w[i] != g[i] {
			lo := max(i-3, 0)
			return fmt.Sprintf("line %d\nbbolt:\n%s\nPostgreSQL:\n%s", i+1,
				strings.Join(w[lo:min(i+4, len(w))], "\n"), strings.Join(g[lo:min(i+4, len(g))], "\n"))
		}
	}
	return "(equal)"
}

// checkGolden compares the answer's JSON, in its golden form
// (goldenForm), with the golden file of name.
func checkGolden(t *testing.T, name string, answer []byte) {
	t.Helper()
	got := goldenForm(t, answer)
	path := filepath.Join("testdata", "source", strings.NewReplacer("/", "_", " ", "_").Replace(name)+".json")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cluster -run TestSourceMatchesBbolt -update to write it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("the bbolt reader's answer differs from %s:\n%s", path, firstDifference(want, got))
	}
}

// recordPages pages a records query to its end, limit records a page. The
// pages' cursors are the readers' own, so what is compared is each page's
// records and whether it had a next one.
type recordPages struct {
	Pages []recordPageShape `json:"pages"`
}

type recordPageShape struct {
	RequestIDs []string `json:"request_ids"`
	Next       bool     `json:"next"`
	// Records are compared between the readers, but kept out of the
	// golden files, whose size they would multiply.
	Records []metrics.Record `json:"records,omitempty"`
}

// golden is the pages without their records.
func (p recordPages) golden() any {
	out := recordPages{Pages: make([]recordPageShape, len(p.Pages))}
	for i, page := range p.Pages {
		out.Pages[i] = recordPageShape{RequestIDs: page.RequestIDs, Next: page.Next}
	}
	return out
}

func pageThrough(ctx context.Context, svc *analytics.Service, q analytics.RecordQuery) (any, error) {
	var out recordPages
	for range 10000 {
		page, err := svc.Records(ctx, q)
		if err != nil {
			return nil, err
		}
		shape := recordPageShape{RequestIDs: []string{}, Next: page.Next != "", Records: page.Records}
		for _, r := range page.Records {
			shape.RequestIDs = append(shape.RequestIDs, r.RequestID)
		}
		out.Pages = append(out.Pages, shape)
		if page.Next == "" {
			return out, nil
		}
		q.Cursor = page.Next
	}
	return nil, errors.New("more than 10000 pages: the cursor does not advance")
}

// recordCases page each filter in both orders, 37 records a page.
func recordCases() []sourceCase {
	mid := time.Date(2026, 11, 2, 9, 17, 3, 123456789, time.UTC)
	filters := []struct {
		name string
		q    analytics.RecordQuery
	}{
		{"all", analytics.RecordQuery{}},
		{"key", analytics.RecordQuery{KeyID: "key_beta"}},
		{"rare_key", analytics.RecordQuery{KeyID: "key_rare"}},
		{"unknown_key", analytics.RecordQuery{KeyID: "key_none"}},
		{"route", analytics.RecordQuery{Route: "/api/items/*"}},
		{"method", analytics.RecordQuery{Method: "DELETE"}},
		{"status", analytics.RecordQuery{Status: 429}},
		{"status_class", analytics.RecordQuery{StatusClass: 5}},
		{"range", analytics.RecordQuery{From: mid, To: mid.Add(26*time.Hour + 3*time.Nanosecond)}},
		{"combined", analytics.RecordQuery{From: mid, KeyID: "key_alpha", Method: "GET", StatusClass: 2}},
	}
	var cases []sourceCase
	for _, f := range filters {
		for _, order := range []metrics.Order{metrics.NewestFirst, metrics.OldestFirst} {
			q := f.q
			q.Order, q.Limit = order, 37
			name := fmt.Sprintf("records/%s/%s", f.name, map[metrics.Order]string{metrics.NewestFirst: "newest", metrics.OldestFirst: "oldest"}[order])
			cases = append(cases, sourceCase{name, func(ctx context.Context, svc *analytics.Service) (any, error) {
				return pageThrough(ctx, svc, q)
			}})
		}
	}
	cases = append(cases, sourceCase{"export/records", func(ctx context.Context, svc *analytics.Service) (any, error) {
		var ids []string
		err := svc.EachRecord(ctx, analytics.RecordQuery{Order: metrics.OldestFirst}, func(rec *metrics.Record) error {
			ids = append(ids, rec.RequestID)
			return nil
		})
		return ids, err
	}})
	return cases
}

// cellCases are the queries the rollups answer: the summary of each
// period, series of each interval by each grouping and filter (minute
// series come from raw records), top of each dimension by each metric,
// per-key usage, the billing report by owner and by key, the series
// export and the alert evaluator's hourly history.
func cellCases() []sourceCase {
	var cases []sourceCase
	for _, period := range []analytics.Period{analytics.PeriodHour, analytics.PeriodDay, analytics.PeriodWeek, analytics.PeriodMonth} {
		cases = append(cases, sourceCase{"summary/" + string(period), func(ctx context.Context, svc *analytics.Service) (any, error) {
			return svc.Summary(ctx, analytics.SummaryQuery{Period: period})
		}})
	}
	groupings := []analytics.GroupBy{analytics.GroupNone, analytics.GroupRoute, analytics.GroupKey, analytics.GroupOwner, analytics.GroupTier, analytics.GroupStatus}
	filters := map[string]analytics.Filter{"none": {}, "key": {KeyID: "key_beta"}, "route": {Route: "/api/forms/*"},
		"owner": {OwnerID: "org_2"}, "tier": {Tier: "pro"}}
	ranges := map[analytics.Interval][2]time.Time{
		analytics.IntervalMinute: {sourceNow.Add(-90 * time.Minute), {}},
		analytics.IntervalHour:   {sourceStart.Add(-2 * time.Hour), sourceNow},
		analytics.IntervalDay:    {sourceStart.AddDate(0, 0, -1), {}},
	}
	for _, iv := range []analytics.Interval{analytics.IntervalMinute, analytics.IntervalHour, analytics.IntervalDay} {
		for _, g := range groupings {
			for fname, f := range filters {
				q := analytics.SeriesQuery{From: ranges[iv][0], To: ranges[iv][1], Interval: iv, GroupBy: g, Filter: f}
				cases = append(cases, sourceCase{fmt.Sprintf("series/%s/by_%s/filter_%s", iv, orAll(string(g)), fname),
					func(ctx context.Context, svc *analytics.Service) (any, error) { return svc.Series(ctx, q) }})
			}
		}
	}
	for _, by := range []analytics.GroupBy{analytics.GroupRoute, analytics.GroupKey, analytics.GroupOwner, analytics.GroupTier} {
		for _, m := range []analytics.Metric{analytics.MetricRequests, analytics.MetricErrors, analytics.MetricErrorRate, analytics.MetricP95, analytics.MetricBytes} {
			cases = append(cases, sourceCase{fmt.Sprintf("top/%s/%s/week", by, m), func(ctx context.Context, svc *analytics.Service) (any, error) {
				return svc.Top(ctx, analytics.TopQuery{By: by, Metric: m, Period: analytics.PeriodWeek})
			}})
		}
		cases = append(cases, sourceCase{fmt.Sprintf("top/%s/requests/range", by), func(ctx context.Context, svc *analytics.Service) (any, error) {
			return svc.Top(ctx, analytics.TopQuery{By: by, From: sourceStart.Add(5 * time.Hour), To: sourceNow.Add(-7 * time.Hour), Limit: 3})
		}})
	}
	for _, key := range append(slices.Clone(sourceKeys), "key_none") {
		cases = append(cases, sourceCase{"usage/" + key, func(ctx context.Context, svc *analytics.Service) (any, error) {
			return svc.KeyUsage(ctx, analytics.KeyUsageQuery{KeyID: key, Tier: "pro"})
		}})
	}
	for _, month := range []string{"2026-10", "2026-11"} {
		for _, g := range []analytics.GroupBy{analytics.GroupOwner, analytics.GroupKey} {
			cases = append(cases, sourceCase{fmt.Sprintf("billing/%s/by_%s", month, g), func(ctx context.Context, svc *analytics.Service) (any, error) {
				return svc.Billing(ctx, analytics.BillingQuery{Month: month, GroupBy: g})
			}})
		}
	}
	cases = append(cases, sourceCase{"export/series_hour_by_route", func(ctx context.Context, svc *analytics.Service) (any, error) {
		plan, err := svc.PlanSeries(analytics.SeriesQuery{From: sourceStart, To: sourceNow, Interval: analytics.IntervalHour, GroupBy: analytics.GroupRoute})
		if err != nil {
			return nil, err
		}
		rows := map[string][]analytics.Point{}
		err = plan.Each(ctx, func(group string, points []analytics.Point) error {
			rows[group] = points
			return nil
		})
		return rows, err
	}})
	for _, kind := range []alerting.SubjectKind{alerting.SubjectGlobal, alerting.SubjectRoute, alerting.SubjectKey, alerting.SubjectOwner} {
		cases = append(cases, sourceCase{"history/" + string(kind), func(_ context.Context, svc *analytics.Service) (any, error) {
			hours := []time.Time{sourceStart.Add(-time.Hour), sourceStart.Add(3 * time.Hour), sourceStart.Add(27 * time.Hour), sourceNow.Add(-time.Hour)}
			var out []string
			err := svc.Hours(kind, hours, func(subject string, hour time.Time, st alerting.HourStat) {
				out = append(out, fmt.Sprintf("%s %s %d %s", subject, hour.Format(time.RFC3339), st.Requests, st.P95))
			})
			return out, err
		}})
	}
	return cases
}

func orAll(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// The bbolt reader and the PostgreSQL reader give the same answers over
// the same data set.
func TestSourceMatchesBbolt(t *testing.T) {
	p := newSourcePair(t)
	compareSources(t, p, append(recordCases(), cellCases()...))
}

// The data set split between three instances (record i on instance
// i mod 3), each shipping its share: every answer the rollups give is the
// one a single file with all of it gives, so the instances' rows of a
// cell merge exactly. (Raw records page in another order than one file's
// blocks, by instance within a day.)
func TestSourceMergesInstances(t *testing.T) {
	url := pg.Database(t)
	whole := newShipNode(t, url, "whole", nil) // recorded, never shipped
	recordSourceData(t, whole.rec, nil)
	var src *cluster.Source
	for part, id := range []string{"a", "b", "c"} {
		n := newShipNode(t, url, id, nil)
		recordSourceData(t, n.rec, func(i int) bool { return i%3 == part })
		n.drain(t)
		src = newSource(t, n.cluster)
	}
	compareSources(t, pairOver(t, whole.rd, src), cellCases())
}
