package metrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// pageIDs pages through q and returns the request ids in order.
func pageIDs(t *testing.T, rd *Reader, q RecordQuery, between func()) []string {
	t.Helper()
	var ids []string
	for _, rec := range pageRecords(t, rd, q, between) {
		ids = append(ids, rec.RequestID)
	}
	return ids
}

// pageRecords pages through q, calling between (if not nil) after each
// page but the last, and returns the records in order.
func pageRecords(t *testing.T, rd *Reader, q RecordQuery, between func()) []Record {
	t.Helper()
	var recs []Record
	for pages := 0; ; pages++ {
		page, err := rd.Records(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Records) > q.Limit {
			t.Fatalf("page of %d records, limit %d", len(page.Records), q.Limit)
		}
		recs = append(recs, page.Records...)
		if page.Next == "" {
			return recs
		}
		if pages > 100000 {
			t.Fatal("pagination does not end")
		}
		q.Cursor = page.Next
		if between != nil {
			between()
		}
	}
}

func TestCursorStableUnderConcurrentWrites(t *testing.T) {
	today := time.Date(2026, 9, 12, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: today.Add(20 * time.Hour)}
	r, rd := newTestRecorder(t, Options{Now: clock.Now})
	rng := rand.New(rand.NewPCG(8, 8))
	var mu sync.Mutex // guards rng and seq for the writers
	seq := 0
	write := func(prefix string, n int) {
		mu.Lock()
		for range n {
			day := today.AddDate(0, 0, -rng.IntN(4))
			rec := Record{Time: day.Add(time.Duration(rng.Int64N(int64(20 * time.Hour)))), Method: "GET",
				Status: 200, RequestID: prefix + strconv.Itoa(seq)}
			seq++
			r.Record(&rec)
		}
		mu.Unlock()
		if err := r.Flush(); err != nil {
			t.Error(err)
		}
	}
	for range 20 {
		write("pre-", 400)
	}
	var existing []string
	for _, rec := range allRecords(t, rd, RecordQuery{}) {
		existing = append(existing, rec.RequestID)
	}

	// A background writer races with the readers (for the race detector),
	// and every page is followed by a flush into the days already read,
	// the day being read and the days still ahead. Writes stay slower than
	// reads, or an oldest-first scan would follow the tail for ever.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		for range 200 {
			select {
			case <-stop:
				return
			default:
				write("bg-", 20)
			}
		}
	})
	for _, order := range []Order{NewestFirst, OldestFirst} {
		t.Run(fmt.Sprint("order", order), func(t *testing.T) {
			ids := pageIDs(t, rd, RecordQuery{Order: order, Limit: 97}, func() { write("new-", 30) })
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("%s returned twice", id)
				}
				seen[id] = true
			}
			for _, id := range existing {
				if !seen[id] {
					t.Fatalf("%s existed before the scan but was skipped", id)
				}
			}
			t.Logf("%d records read, %d existed at the start", len(ids), len(existing))
		})
	}
	close(stop)
	bg.Wait()
}

// TestRecordFiltersMatchBruteForce pages through filtered queries over a
// file that holds blocks of every version, as one does after upgrades:
// golden version-1 and version-2 blocks, then version-3 blocks as the
// encoder before version 4 wrote them and version-4 blocks, written into
// the same days. Blocks of version 3 and later without the filtered key
// are skipped by their header; older ones must always be read.
func TestRecordFiltersMatchBruteForce(t *testing.T) {
	start := time.Date(2026, 4, 1, 20, 0, 0, 0, time.UTC)
	st := storetest.MustOpen(t)
	goldenStart := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	old := slices.Concat(
		putGoldenBlock(t, st, blockVersion1, start.Add(30*time.Minute).Sub(goldenStart)),
		putGoldenBlock(t, st, 2, start.Add(4*time.Hour+10*time.Minute).Sub(goldenStart)))
	const internedOnly = "key_interned_only" // in the dictionary, in no block
	if err := st.Update(func(tx *store.Tx) error {
		_, err := newDictWriter().intern(tx.Bucket(store.BucketDict), internedOnly)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	r, rd := newTestRecorder(t, Options{Store: st})
	g := newTrafficGen(9, start, 0.5) // 4.4 hours: the flushes span two days
	var fresh []Record
	const perFlush = 2000 // so that version-4 blocks have several segments
	for flush := range 4 {
		r.setBlockVersion(t, []byte{blockVersion3, blockVersion3, blockVersion4, blockVersion4}[flush])
		for range perFlush {
			var rec Record
			g.next(&rec)
			r.Record(&rec)
			fresh = append(fresh, rec)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	all := allRecords(t, rd, RecordQuery{Order: OldestFirst})
	if len(all) != len(old)+len(fresh) {
		t.Fatalf("%d records, want %d", len(all), len(old)+len(fresh))
	}
	var versions [blockVersion + 1]int
	if err := st.View(func(tx *store.Tx) error {
		return tx.Bucket(store.BucketRaw).ForEachBucket(func(day []byte) error {
			return tx.Bucket(store.BucketRaw).Bucket(day).ForEach(func(_, v []byte) error {
				versions[v[0]]++
				return nil
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	if versions[1] != 1 || versions[2] != 1 || versions[3] < 2 || versions[4] < 2 {
		t.Fatalf("blocks by version %v, want 1, 1 and at least 2 each of versions 3 and 4", versions[1:])
	}
	// The old blocks decode to their golden records.
	stored := map[string]int{}
	for _, rec := range slices.Concat(old, sanitizedSorted(fresh)) {
		stored[fmt.Sprint(rec)]++
	}
	for _, rec := range all {
		stored[fmt.Sprint(rec)]--
	}
	for rec, n := range stored {
		if n != 0 {
			t.Fatalf("%+d times: %s", n, rec)
		}
	}

	// Keys by where they occur, for the fixed cases below.
	blocksOf := map[string]map[int64]bool{} // key -> the flushes holding it
	for i := range fresh {
		if blocksOf[fresh[i].KeyID] == nil {
			blocksOf[fresh[i].KeyID] = map[int64]bool{}
		}
		blocksOf[fresh[i].KeyID][int64(i/perFlush)] = true
	}
	inOneFlush := ""
	for i := range fresh {
		if k := fresh[i].KeyID; len(blocksOf[k]) == 1 && !slices.ContainsFunc(old, func(r Record) bool { return r.KeyID == k }) {
			inOneFlush = k
			break
		}
	}
	if inOneFlush == "" {
		t.Fatal("no key is in only one flush")
	}

	rng := rand.New(rand.NewPCG(10, 10))
	type tc struct {
		name string
		q    RecordQuery
	}
	var cases []tc
	for round := range 30 {
		pick := all[rng.IntN(len(all))]
		q := RecordQuery{Limit: 1 + rng.IntN(500)}
		switch round % 6 {
		case 0:
			q.KeyID = pick.KeyID
		case 1:
			q.Route, q.Method = pick.Route, pick.Method
		case 2:
			q.Status = pick.Status
		case 3:
			q.StatusClass = pick.StatusClass()
			q.KeyID = pick.KeyID
		case 4:
			q.From = pick.Time
			q.To = pick.Time.Add(time.Duration(rng.IntN(20)) * time.Hour)
		case 5:
			q.KeyID = "never-seen"
		}
		cases = append(cases, tc{fmt.Sprint("random ", round), q})
	}
	cases = append(cases,
		tc{"key of the old blocks only", RecordQuery{KeyID: "key_07", Limit: 3}},
		tc{"key of the old blocks, method", RecordQuery{KeyID: "key_07", Method: "DELETE", Limit: 1}},
		tc{"key in one flush", RecordQuery{KeyID: inOneFlush, Limit: 1}},
		tc{"key in one flush, time range", RecordQuery{KeyID: inOneFlush, From: start, To: start.Add(3 * time.Hour), Limit: 2}},
		tc{"key interned but never recorded", RecordQuery{KeyID: internedOnly, Limit: 10}},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkFilteredPages(t, rd, c.q, all)
		})
	}
}

func recordsEqual(a, b Record) bool { return reflect.DeepEqual(a, b) }

func TestRecordsRejectsBadCursors(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	for i := range 5 {
		rec := Record{Time: time.Now(), Method: "GET", Status: 200, RequestID: strconv.Itoa(i)}
		r.Record(&rec)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	page, err := rd.Records(context.Background(), RecordQuery{Limit: 2, Order: NewestFirst})
	if err != nil || page.Next == "" {
		t.Fatalf("%v %q", err, page.Next)
	}
	for _, c := range []string{"garbage", "!!", page.Next[:len(page.Next)-2]} {
		if _, err := rd.Records(context.Background(), RecordQuery{Cursor: c}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: %v", c, err)
		}
	}
	if _, err := rd.Records(context.Background(), RecordQuery{Cursor: page.Next, Order: OldestFirst}); !errors.Is(err, ErrBadCursor) {
		t.Errorf("cursor of the other order: %v", err)
	}
	now := time.Now()
	if _, err := rd.Records(context.Background(), RecordQuery{From: now, To: now}); !errors.Is(err, ErrBadQuery) {
		t.Errorf("empty range: %v", err)
	}
}

func TestCellQueries(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	day := time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC)
	// Route /a: 3 requests at 01:xx, 1 at 05:xx; route /b: 2 at 05:xx, the next day 1.
	for _, x := range []struct {
		at     time.Duration
		route  string
		status int
		ms     int
	}{
		{70 * time.Minute, "/a", 200, 10}, {80 * time.Minute, "/a", 500, 20}, {90 * time.Minute, "/a", 429, 30},
		{5*time.Hour + time.Minute, "/a", 200, 40},
		{5*time.Hour + 2*time.Minute, "/b", 404, 50}, {5*time.Hour + 3*time.Minute, "/b", 200, 60},
		{26 * time.Hour, "/b", 200, 70},
	} {
		rec := Record{Time: day.Add(x.at), Route: x.route, Method: "GET", Status: x.status,
			Latency: time.Duration(x.ms) * time.Millisecond, Decision: decision.Valid, ResponseBytes: 100}
		if x.status == 429 {
			rec.Decision = decision.RateLimited
		}
		r.Record(&rec)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	series, err := rd.Series(ctx, CellQuery{Interval: Hourly, Dimension: DimRoute, Value: "/a", From: day, To: day.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 1 || len(series[0].Points) != 2 {
		t.Fatalf("series %+v", series)
	}
	p := series[0].Points[0]
	if !p.Start.Equal(day.Add(time.Hour)) || p.Cell.Count != 3 || p.Cell.Status5xx != 1 || p.Cell.RateLimited != 1 ||
		p.Cell.Status2xx != 1 || p.Cell.Status4xx != 1 || p.Cell.BytesOut != 300 ||
		p.Cell.LatencyMin != 10*time.Millisecond || p.Cell.LatencyMax != 30*time.Millisecond ||
		p.Cell.MeanLatency() != 20*time.Millisecond {
		t.Fatalf("01:00 cell of /a: %+v", p)
	}

	// From inside an hour includes that hour; To at an hour's start excludes it.
	sum, err := rd.Sum(ctx, CellQuery{Interval: Hourly, Dimension: DimTotal, From: day.Add(90 * time.Minute), To: day.Add(5 * time.Hour)})
	if err != nil || sum.Count != 3 {
		t.Fatalf("sum %d %v, want the 3 requests of 01:00", sum.Count, err)
	}

	totals, err := rd.Totals(ctx, CellQuery{Interval: Daily, Dimension: DimRoute, AllValues: true, From: day, To: day.AddDate(0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) != 2 || totals[0].Value != "/a" || totals[0].Cell.Count != 4 || totals[1].Cell.Count != 3 {
		t.Fatalf("totals %+v", totals)
	}
	// p50 of /a's latencies (10, 20, 30, 40 ms) is 20 ms within the error.
	if q := totals[0].Cell.LatencyQuantile(0.5); q < 19*time.Millisecond || q > 21*time.Millisecond {
		t.Fatalf("p50 %s", q)
	}

	byClass, err := rd.Totals(ctx, CellQuery{Interval: Daily, Dimension: DimStatusClass, AllValues: true, From: day})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, vc := range byClass {
		counts[vc.Value] = vc.Cell.Count
	}
	if counts["2xx"] != 4 || counts["4xx"] != 2 || counts["5xx"] != 1 {
		t.Fatalf("status classes %v", counts)
	}

	// Hours of one day in another timezone sum from UTC hours.
	ny, _ := time.LoadLocation("America/New_York")
	if ny != nil {
		localDay := time.Date(2026, 10, 2, 0, 0, 0, 0, ny) // 04:00 UTC on the 2nd to 04:00 UTC on the 3rd
		s, err := rd.Sum(ctx, CellQuery{Interval: Hourly, Dimension: DimTotal, From: localDay, To: localDay.AddDate(0, 0, 1)})
		if err != nil || s.Count != 3 {
			t.Fatalf("New York day: %d %v, want the 3 requests before 04:00 UTC", s.Count, err)
		}
	}

	for _, q := range []CellQuery{
		{Interval: 0, Dimension: DimTotal},
		{Interval: Hourly, Dimension: 0},
		{Interval: Hourly, Dimension: DimTotal, From: day, To: day},
	} {
		if _, err := rd.Sum(ctx, q); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%+v: %v", q, err)
		}
	}
}

func TestDimensionAndIntervalNames(t *testing.T) {
	for _, d := range Dimensions {
		back, err := ParseDimension(d.String())
		if err != nil || back != d {
			t.Errorf("%v: %v %v", d, back, err)
		}
	}
	if d, _ := ParseDimension("key_id"); d != DimKey {
		t.Error("key_id alias")
	}
	if _, err := ParseDimension("colour"); !errors.Is(err, ErrUnknownName) {
		t.Error(err)
	}
	for _, iv := range []Interval{Hourly, Daily} {
		back, err := ParseInterval(iv.String())
		if err != nil || back != iv {
			t.Errorf("%v: %v %v", iv, back, err)
		}
	}
	if _, err := ParseInterval("minute"); !errors.Is(err, ErrUnknownName) {
		t.Error(err)
	}
}
