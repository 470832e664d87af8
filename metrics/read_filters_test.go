package metrics

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// decodeEveryBlock decodes every block in the file whole, in storage
// order (day, block, row): what an unfiltered oldest-first scan returns,
// read without the filtered read's row selection.
func decodeEveryBlock(t *testing.T, st *store.Store, rd *Reader) []Record {
	t.Helper()
	var all []Record
	var dec blockDecoder
	if err := st.View(func(tx *store.Tx) error {
		resolve := rd.dict.resolver(tx)
		raw := tx.Bucket(store.BucketRaw)
		return raw.ForEachBucket(func(day []byte) error {
			return raw.Bucket(day).ForEach(func(_, v []byte) error {
				var err error
				all, err = dec.decode(v, resolve, all)
				return err
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

// Every filter, alone and with a key, in both orders, paged to the end
// with small and large pages, returns exactly the records of a whole
// decode of every block that match it. The file holds version-3 and
// version-4 blocks in the same days, a key with one record in each of
// several blocks (the rare key of a drill-down), a key first seen in the
// last flush (so its id ends every key list holding it), and keys of
// version-4 blocks' first and last segments.
func TestRecordFiltersMatchWholeDecode(t *testing.T) {
	start := time.Date(2026, 6, 3, 22, 30, 0, 0, time.UTC)
	st := storetest.MustOpen(t)
	r, rd := newTestRecorder(t, Options{Store: st})
	g := newTrafficGen(18, start, 0.25) // 5 flushes of 1,500 records: 8.3 hours, two days
	const (
		perFlush = 1500 // three segments in a version-4 block
		rare     = "key_rare"
		late     = "key_zz_late"
	)
	for flush, v := range []byte{4, 3, 4, 4, 4} {
		r.setBlockVersion(t, v)
		for i := range perFlush {
			var rec Record
			g.next(&rec)
			switch {
			case i == perFlush/2: // one record a flush
				rec.KeyID = rare
			case flush == 4 && i%50 == 7:
				rec.KeyID = late
			}
			r.Record(&rec)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	all := decodeEveryBlock(t, st, rd)
	if len(all) != 5*perFlush {
		t.Fatalf("%d records", len(all))
	}
	// Keys held by the first and the last segment of version-4 blocks:
	// the smallest and largest dictionary id of the last flush's block.
	lastBlock := all[len(all)-1]
	var firstSeg, lastSeg string
	lowID, highID := uint64(math.MaxUint64), uint64(0)
	if err := st.View(func(tx *store.Tx) error {
		for _, rec := range all[len(all)-perFlush:] {
			id, ok := lookupDictID(tx, rec.KeyID)
			if !ok {
				return fmt.Errorf("%s not in the dictionary", rec.KeyID)
			}
			if id < lowID && rec.KeyID != rare {
				lowID, firstSeg = id, rec.KeyID
			}
			if id > highID && rec.KeyID != late {
				highID, lastSeg = id, rec.KeyID
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	perKey := map[string]int{}
	for _, rec := range all {
		perKey[rec.KeyID]++
	}
	common := all[0].KeyID
	for k, n := range perKey {
		if n > perKey[common] {
			common = k
		}
	}
	mid := all[len(all)/2].Time
	for _, k := range []string{rare, late, firstSeg, lastSeg, common} {
		if !slices.ContainsFunc(all, func(rec Record) bool { return rec.KeyID == k }) {
			t.Fatalf("no record of %s", k)
		}
	}

	for _, tc := range []struct {
		name string
		q    RecordQuery
	}{
		{"unfiltered", RecordQuery{}},
		{"rare key", RecordQuery{KeyID: rare}},
		{"key first seen in the last flush", RecordQuery{KeyID: late}},
		{"key of a first segment", RecordQuery{KeyID: firstSeg}},
		{"key of a last segment", RecordQuery{KeyID: lastSeg}},
		{"common key", RecordQuery{KeyID: common}},
		{"key never recorded", RecordQuery{KeyID: "key_nobody"}},
		{"route", RecordQuery{Route: lastBlock.Route}},
		{"method", RecordQuery{Method: "PATCH"}},
		{"status", RecordQuery{Status: 429}},
		{"status class", RecordQuery{StatusClass: 5}},
		{"time bounds inside blocks", RecordQuery{From: mid.Add(-20 * time.Minute), To: mid.Add(40 * time.Minute)}},
		{"key and route", RecordQuery{KeyID: common, Route: lastBlock.Route}},
		{"key and method", RecordQuery{KeyID: common, Method: "POST"}},
		{"key and status", RecordQuery{KeyID: common, Status: 200}},
		{"key and status class", RecordQuery{KeyID: common, StatusClass: 4}},
		{"rare key and status class", RecordQuery{KeyID: rare, StatusClass: 2}},
		{"rare key and time bounds", RecordQuery{KeyID: rare, From: start.Add(90 * time.Minute), To: mid.Add(2 * time.Hour)}},
		{"late key and time bounds", RecordQuery{KeyID: late, From: lastBlock.Time.Add(-30 * time.Minute), To: lastBlock.Time}},
		{"key, route, method, status, time", RecordQuery{KeyID: common, Route: lastBlock.Route, Method: lastBlock.Method, StatusClass: 2, From: start, To: mid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := recordFilter{q: &tc.q, fromMicro: math.MinInt64, toMicro: math.MaxInt64}
			if !tc.q.From.IsZero() {
				f.fromMicro, f.toMicro = ceilMicro(tc.q.From), ceilMicro(tc.q.To)
			}
			var want []Record
			for i := range all {
				if f.match(&all[i]) {
					want = append(want, all[i])
				}
			}
			if len(want) == 0 && tc.q.KeyID != "key_nobody" {
				t.Fatalf("%+v matches nothing", tc.q)
			}
			// Serially and with the next block read ahead; pages of the
			// default size, and small ones (one record when few match)
			// so that a scan resumes from about 25 cursors.
			for _, procs := range []int{1, 2} {
				for _, limit := range []int{1 + len(want)/25, DefaultRecordLimit} {
					prev := runtime.GOMAXPROCS(procs)
					q := tc.q
					q.Limit, q.Order = limit, OldestFirst
					got := pageRecords(t, rd, q, nil)
					q.Order = NewestFirst
					gotNewest := pageRecords(t, rd, q, nil)
					runtime.GOMAXPROCS(prev)
					if !slices.EqualFunc(got, want, recordsEqual) {
						t.Fatalf("procs %d, limit %d, oldest first: %d records, want %d", procs, limit, len(got), len(want))
					}
					slices.Reverse(gotNewest)
					if !slices.EqualFunc(gotNewest, want, recordsEqual) {
						t.Fatalf("procs %d, limit %d, newest first: %d records, want %d", procs, limit, len(gotNewest), len(want))
					}
				}
			}
		})
	}
}
