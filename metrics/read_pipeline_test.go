package metrics

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// A selective scan inflates the next block while it decodes the current
// one. Paged by key, route and status, at every page size, it returns
// exactly what a filter over a full scan returns, with one processor (no
// pipelining) and with two.
func TestRecordsPipelinedPagesMatchFullScan(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	g := newTrafficGen(21, time.Date(2026, 5, 2, 22, 0, 0, 0, time.UTC), 0.5)
	for range 12 { // 12 blocks, two days
		recordAndFlush(t, r, g, 300)
	}
	all := allRecords(t, rd, RecordQuery{Order: OldestFirst})
	pick := all[len(all)/2]
	queries := []RecordQuery{{KeyID: pick.KeyID}, {Route: pick.Route}, {Status: pick.Status}, {KeyID: all[0].KeyID, StatusClass: 2}}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for _, q := range queries {
			f := recordFilter{q: &q, fromMicro: -1 << 62, toMicro: 1 << 62}
			var want []Record
			for i := range all {
				if f.match(&all[i]) {
					want = append(want, all[i])
				}
			}
			for _, limit := range []int{9, 250, 5000} {
				q.Limit, q.Order = limit, OldestFirst
				if got := pageRecords(t, rd, q, nil); !slices.EqualFunc(got, want, recordsEqual) {
					t.Fatalf("procs %d %+v oldest first: %d records, want %d", procs, q, len(got), len(want))
				}
				q.Order = NewestFirst
				got := pageRecords(t, rd, q, nil)
				slices.Reverse(got)
				if !slices.EqualFunc(got, want, recordsEqual) {
					t.Fatalf("procs %d %+v newest first: %d records, want %d", procs, q, len(got), len(want))
				}
			}
		}
	}
}

// A damaged block found by a job running ahead is reported as
// ErrCorruptBlock, and Records returns only after the job is done.
func TestRecordsPipelinedCorruptBlock(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	start := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	g := newTrafficGen(22, start, 0.5) // 40 minutes: one day
	var key string
	for range 4 {
		for range 300 {
			var rec Record
			g.next(&rec)
			rec.KeyID = "key_everywhere"
			key = rec.KeyID
			r.Record(&rec)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Damage the body of the oldest block, which a newest-first scan
	// reaches last.
	if err := rd.st.Update(func(tx *store.Tx) error {
		raw := tx.Bucket(store.BucketRaw)
		day := raw.Bucket(dayName(Daily.number(start)))
		k, v := day.Cursor().First()
		_, body, err := parseBlockHeader(v)
		if err != nil {
			return err
		}
		damaged := append([]byte(nil), v[:len(v)-len(body)]...)
		damaged = append(damaged, make([]byte, len(body))...)
		return day.Put(k, damaged)
	}); err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	_, err := rd.Records(context.Background(), RecordQuery{KeyID: key, Limit: 10000})
	if !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("err %v, want ErrCorruptBlock", err)
	}
}

// A panic in a job, which runs on a goroutine of its own, comes back as
// ErrCorruptBlock instead of ending the process.
func TestBlockJobPanicIsCorruptBlock(t *testing.T) {
	j := blockJob{h: blockHeader{version: blockVersion, flags: blockFlagFlate, count: 1}, done: make(chan struct{})}
	go j.run(&recordFilter{q: &RecordQuery{}}, []byte{1}) // no decoder: a nil dereference
	<-j.done
	if !errors.Is(j.err, ErrCorruptBlock) {
		t.Fatalf("err %v, want ErrCorruptBlock", j.err)
	}
}
