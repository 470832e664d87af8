package metrics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/store"
)

// storedDays lists the day buckets under store.BucketRaw.
func storedDays(t *testing.T, st *store.Store) []string {
	t.Helper()
	var days []string
	err := st.View(func(tx *store.Tx) error {
		return tx.Bucket(store.BucketRaw).ForEachBucket(func(name []byte) error {
			days = append(days, string(name))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return days
}

// cellDays returns the UTC days that have a DimTotal cell of iv.
func cellDays(t *testing.T, rd *Reader, iv Interval) map[string]bool {
	t.Helper()
	days := map[string]bool{}
	err := rd.ScanCells(context.Background(), CellQuery{Interval: iv, Dimension: DimTotal},
		func(_ string, start time.Time, _ *Cell) error {
			days[start.Format(time.DateOnly)] = true
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return days
}

func TestRetentionDropsWholeDaysAndFollowsEachLimit(t *testing.T) {
	today := time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)
	clock := &testClock{}
	r, rd := newTestRecorder(t, Options{Now: clock.Now, RawRetentionDays: 3, HourlyRetentionDays: 5, DailyRetentionDays: 8})
	// Write one day at a time with the clock on that day, as a live
	// server would have.
	for back := 12; back >= 0; back-- {
		day := today.AddDate(0, 0, -back)
		clock.Set(day)
		for i := range 50 {
			rec := Record{Time: day.Add(-2*time.Hour + time.Duration(i)*time.Minute), Method: "GET", Status: 200,
				KeyID: fmt.Sprint("k", i%7), Route: "/r"}
			r.Record(&rec)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(storedDays(t, r.st)); got != 13 {
		t.Fatalf("%d raw days before retention, want 13", got)
	}

	res, err := r.ApplyRetention(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantDays := func(n int) map[string]bool {
		m := map[string]bool{}
		for back := range n + 1 {
			m[today.AddDate(0, 0, -back).Format(time.DateOnly)] = true
		}
		return m
	}
	raw := storedDays(t, r.st)
	if len(raw) != 4 {
		t.Fatalf("raw days %v, want today and the 3 before", raw)
	}
	for _, d := range raw {
		if !wantDays(3)[d] {
			t.Fatalf("raw day %s kept", d)
		}
	}
	if got := cellDays(t, rd, Hourly); len(got) != 6 {
		t.Fatalf("hourly cells on days %v, want 6 days", got)
	}
	for d := range cellDays(t, rd, Hourly) {
		if !wantDays(5)[d] {
			t.Fatalf("hourly cell of %s kept", d)
		}
	}
	if got := cellDays(t, rd, Daily); len(got) != 9 {
		t.Fatalf("daily cells on days %v, want 9 days", got)
	}
	if res.RawDays != 9 {
		t.Fatalf("result %+v", res)
	}
	// The kept raw days are intact.
	if got := len(allRecords(t, rd, RecordQuery{})); got != 4*50 {
		t.Fatalf("%d raw records kept, want 200", got)
	}
	// A second pass has nothing to do.
	if res, err := r.ApplyRetention(context.Background()); err != nil || res != (RetentionResult{}) {
		t.Fatalf("second pass: %+v %v", res, err)
	}

	// A late record for an expired day is not written where retention
	// would only delete it again; its still-kept daily cell is updated.
	late := Record{Time: today.AddDate(0, 0, -7), Method: "GET", Status: 200}
	r.Record(&late)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := len(storedDays(t, r.st)); got != 4 {
		t.Fatalf("a late record recreated an expired raw day: %v", storedDays(t, r.st))
	}
	if !cellDays(t, rd, Daily)[late.Time.Format(time.DateOnly)] || cellDays(t, rd, Hourly)[late.Time.Format(time.DateOnly)] {
		t.Fatal("late record not counted by its own limits")
	}
}

func TestRetentionWorksInBatches(t *testing.T) {
	now := time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)
	clock := &testClock{now: now.AddDate(0, 0, -30)}
	r, rd := newTestRecorder(t, Options{Now: clock.Now, HourlyRetentionDays: 10})
	// More expired cells than one transaction deletes.
	for _, at := range []time.Time{now.AddDate(0, 0, -30), now} {
		clock.Set(at)
		for i := range 3 * retentionBatch / 2 {
			rec := Record{Time: at, Method: "GET", Status: 200, KeyID: fmt.Sprintf("key%05d", i)}
			r.Record(&rec)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	res, err := r.ApplyRetention(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// total + status class + 1,500 keys, in the old hour.
	if res.HourlyCells != 2+3*retentionBatch/2 {
		t.Fatalf("deleted %d hourly cells, want %d", res.HourlyCells, 2+3*retentionBatch/2)
	}
	kept, err := rd.Totals(context.Background(), CellQuery{Interval: Hourly, Dimension: DimKey, AllValues: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 3*retentionBatch/2 {
		t.Fatalf("%d keys have hourly cells left, want %d", len(kept), 3*retentionBatch/2)
	}
}

func TestRunAppliesRetention(t *testing.T) {
	now := time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)
	clock := &testClock{now: now.AddDate(0, 0, -5)}
	r, _ := newTestRecorder(t, Options{Now: clock.Now, RawRetentionDays: 2, RetentionInterval: time.Hour})
	rec := Record{Time: clock.Now(), Method: "GET", Status: 200}
	r.Record(&rec)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	clock.Set(now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(storedDays(t, r.st)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not apply retention at start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// dictEntries counts the keys of the dictionary bucket.
func dictEntries(t *testing.T, st *store.Store) int {
	t.Helper()
	n := 0
	err := st.View(func(tx *store.Tx) error {
		n = tx.Bucket(store.BucketDict).KeyN()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// usedBytes is the size of the pages bbolt has handed out.
func usedBytes(t *testing.T, st *store.Store) int64 {
	t.Helper()
	var n int64
	if err := st.View(func(tx *store.Tx) error { n = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A client chooses its user agent, its method (net/http takes any token)
// and, without a CDN in front, the country header. Requests that send a
// new one each time must not leave anything behind once retention has
// dropped their days: not in the dictionary, not in the file's pages.
func TestRetentionReclaimsClientChosenStrings(t *testing.T) {
	const (
		keptDays = 2
		perDay   = 3000
		days     = 14
	)
	for _, tc := range []struct {
		name string
		set  func(*Record, string)
		get  func(*Record) string
	}{
		{"user agent", func(r *Record, s string) { r.UserAgent = "evil/" + s }, func(r *Record) string { return r.UserAgent }},
		{"method", func(r *Record, s string) { r.Method = s }, func(r *Record) string { return r.Method }},
		{"country", func(r *Record, s string) { r.Country = s }, func(r *Record) string { return r.Country }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{}
			r, rd := newTestRecorder(t, Options{Now: clock.Now, RawRetentionDays: keptDays, BufferSize: perDay})
			rng := rand.New(rand.NewPCG(uint64(len(tc.name)), 9))
			start := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
			var steadyUsed int64
			var last Record
			for day := range days {
				now := start.AddDate(0, 0, day)
				clock.Set(now)
				for i := range perDay {
					rec := Record{Time: now.Add(time.Duration(i) * time.Second), Method: "GET", Route: "/api/forms",
						Path: "/api/forms", Status: 404, UserAgent: "curl/8.5.0", Country: "US", Decision: decision.MissingKey}
					tc.set(&rec, fmt.Sprintf("%08x", rng.Uint32()))
					if !r.Record(&rec) {
						t.Fatal("buffer full")
					}
					last = rec
				}
				if err := r.Flush(); err != nil {
					t.Fatal(err)
				}
				if _, err := r.ApplyRetention(context.Background()); err != nil {
					t.Fatal(err)
				}
				// The legitimate strings and their ids: method, route,
				// decision, country, user agent, two entries each.
				if n := dictEntries(t, r.st); n > 2*5 {
					t.Fatalf("day %d: %d dictionary entries; the client's strings are interned", day, n)
				}
				if day == 2*keptDays {
					steadyUsed = usedBytes(t, r.st)
				}
			}
			// Pages freed by retention are reused: the file's high-water
			// mark stops growing once retention keeps pace (give or take
			// some fragmentation; interning made it grow by a day's
			// dictionary entries every day).
			if used := usedBytes(t, r.st); used > steadyUsed+steadyUsed/2 {
				t.Errorf("pages in use grew from %d to %d bytes under steady traffic", steadyUsed, used)
			}
			// What is kept still reads back exactly, the client's
			// strings included.
			got := allRecords(t, rd, RecordQuery{}) // newest first
			if len(got) != (keptDays+1)*perDay {
				t.Fatalf("%d records kept, want %d", len(got), (keptDays+1)*perDay)
			}
			if s := tc.get(&got[0]); s != tc.get(&last) {
				t.Fatalf("newest record has %q, want %q", s, tc.get(&last))
			}
		})
	}
}
