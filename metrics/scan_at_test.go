package metrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
)

// ScanCellsAt must see exactly the cells a full ScanCells sees at the
// wanted hours, in the same order, whatever the gaps: keys that exist on
// some days only, hours without any cell, the newest hour, one hour.
func TestScanCellsAtMatchesAFullScan(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, 40)
	r, rd := newTestRecorder(t, Options{Now: func() time.Time { return end }})
	rng := rand.New(rand.NewPCG(3, 5))
	var recs []Record
	for at := start; at.Before(end); at = at.Add(time.Hour) {
		for k := range 12 {
			// Key k exists on some days only and skips hours; key 11 only
			// in the last two days.
			day := int(at.Sub(start).Hours()) / 24
			if (day+k)%7 == 0 || rng.IntN(3) == 0 || (k == 11 && day < 38) {
				continue
			}
			recs = append(recs, Record{Time: at.Add(time.Duration(rng.IntN(3600)) * time.Second), Method: "GET", Status: 200,
				KeyID: fmt.Sprintf("key_%02d", k), Latency: time.Duration(1+rng.IntN(50)) * time.Millisecond, Decision: decision.Valid})
		}
	}
	slices.SortFunc(recs, func(a, b Record) int { return a.Time.Compare(b.Time) })
	if n := r.RecordBatch(recs); n != len(recs) {
		t.Fatalf("recorded %d of %d", n, len(recs))
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	last := end.Add(-time.Hour)
	weeksBack := func(h time.Time) []time.Time {
		return []time.Time{h.AddDate(0, 0, -28), h.AddDate(0, 0, -21), h.AddDate(0, 0, -14), h.AddDate(0, 0, -7)}
	}
	cases := map[string][]time.Time{
		"one hour":                 {start.Add(50 * time.Hour)},
		"the newest hour":          {last},
		"four weeks and the last":  append(weeksBack(last.Add(-time.Hour)), last.Add(-time.Hour), last),
		"a whole day":              nil,
		"before any data":          {start.Add(-48 * time.Hour), start.Add(-time.Hour)},
		"after all data":           {end, end.Add(time.Hour)},
		"first hour and scattered": {start, start.Add(7 * time.Hour), start.Add(300 * time.Hour), start.Add(301 * time.Hour), last},
	}
	for h := last.Add(-23 * time.Hour); !h.After(last); h = h.Add(time.Hour) {
		cases["a whole day"] = append(cases["a whole day"], h)
	}
	type row struct {
		value string
		start time.Time
		count uint64
	}
	for _, dim := range []Dimension{DimKey, DimTotal} {
		var all []row
		err := rd.ScanCells(context.Background(), CellQuery{Interval: Hourly, Dimension: dim, AllValues: true, From: start.Add(-72 * time.Hour)},
			func(v string, at time.Time, c *Cell) error {
				all = append(all, row{v, at, c.Count})
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		for name, at := range cases {
			t.Run(fmt.Sprintf("%s/%s", dim, name), func(t *testing.T) {
				var want, got []row
				for _, x := range all {
					if slices.ContainsFunc(at, x.start.Equal) {
						want = append(want, x)
					}
				}
				err := rd.ScanCellsAt(context.Background(), Hourly, dim, at, func(v string, at time.Time, c *Cell) error {
					got = append(got, row{v, at, c.Count})
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%d cells, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
				}
			})
		}
	}
	if err := rd.ScanCellsAt(context.Background(), Hourly, DimKey, []time.Time{last, start}, func(string, time.Time, *Cell) error { return nil }); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("descending hours: %v, want ErrBadQuery", err)
	}
}
