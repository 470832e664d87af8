package metrics

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store/storetest"
)

// setBlockVersion makes the recorder's next flushes write blocks of the
// given version: blockVersion3 writes them as binaries before version 4
// did, with the same encoder code path.
func (r *Recorder) setBlockVersion(t testing.TB, v byte) {
	t.Helper()
	if v != blockVersion3 && v != blockVersion4 {
		t.Fatalf("the encoder writes versions 3 and 4, not %d", v)
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.enc.version = v
}

// readKeyRows reads the rows of one key from block b as a filtered page
// does: the select section, then the segments holding the key's rows. It
// returns them and how many segments were loaded.
func readKeyRows(t testing.TB, dec *blockDecoder, dict *memDict, b []byte, key string) ([]Record, int) {
	t.Helper()
	h, body, err := parseBlockHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := dict.intern(key)
	q := RecordQuery{KeyID: key}
	f := recordFilter{q: &q, fromMicro: math.MinInt64, toMicro: math.MaxInt64}
	f.strs[filterKey] = stringFilter{col: colKey, s: key, id: id, inDict: true}
	view, err := dec.open(h, body)
	if err != nil {
		t.Fatal(err)
	}
	sel := make([]bool, h.count)
	hit, err := f.selectRows(view, sel)
	if err != nil || !hit {
		t.Fatalf("key %s: hit %v, %v", key, hit, err)
	}
	if err := dec.load(view, sel); err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, s := range view.v4.segs {
		if s.loaded {
			loaded++
		}
	}
	got, err := decodeColumns(view, dict.resolve, nil, sel)
	if err != nil {
		t.Fatal(err)
	}
	return got, loaded
}

// Version-4 blocks of every size decode to what was encoded, and one
// key's rows come from one segment however many the block has.
func TestBlockV4RoundTrip(t *testing.T) {
	dict := newMemDict()
	enc := newBlockEncoder()
	var dec blockDecoder
	for _, tc := range []struct {
		n, keys      int
		wantSegments int
	}{
		{1, 1, 1}, {7, 3, 1}, {segmentRecords, 50, 1}, {segmentRecords + 1, 50, 2}, {3000, 2, 2}, {3000, 1, 1},
		{5000, 1000, 10}, {maxBlockRecords, 1000, maxSegments}, {maxBlockRecords, 5, 5},
	} {
		t.Run(fmt.Sprintf("%d records %d keys", tc.n, tc.keys), func(t *testing.T) {
			g := newTrafficGen(uint64(tc.n), time.Date(2026, 6, 6, 1, 0, 0, 0, time.UTC), 1000)
			recs := make([]Record, tc.n)
			for i := range recs {
				g.next(&recs[i])
				recs[i].KeyID = fmt.Sprintf("key_%d", (i*7919)%tc.keys)
			}
			ptrs := sortedPointers(recs)
			block, err := enc.encode(nil, ptrs, dict.intern)
			if err != nil {
				t.Fatal(err)
			}
			if block[0] != blockVersion4 {
				t.Fatalf("version %d", block[0])
			}
			got, err := dec.decode(block, dict.resolve, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range ptrs {
				if !reflect.DeepEqual(got[i], *want) {
					t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], *want)
				}
			}
			if segs := len(dec.view.v4.segs); segs != tc.wantSegments {
				t.Fatalf("%d segments, want %d", segs, tc.wantSegments)
			}
			for _, key := range []string{recs[0].KeyID, recs[len(recs)/2].KeyID, recs[len(recs)-1].KeyID} {
				var want []Record
				for _, p := range ptrs {
					if p.KeyID == key {
						want = append(want, *p)
					}
				}
				rows, loaded := readKeyRows(t, &dec, dict, block, key)
				if !slices.EqualFunc(rows, want, recordsEqual) {
					t.Fatalf("key %s: %d rows, want %d", key, len(rows), len(want))
				}
				if loaded != 1 {
					t.Fatalf("key %s: %d segments loaded, want 1", key, loaded)
				}
			}
		})
	}
}

// The encoder still writes version 3 byte for byte as before version 4
// (the golden block), so tests can build files as older binaries left
// them; and version 4 writes the golden version-4 block.
func TestGoldenBlockBytes(t *testing.T) {
	for _, v := range []byte{blockVersion3, blockVersion4} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			want, dict, _ := readGolden(t, int(v))
			enc := newBlockEncoder()
			enc.version = v
			got, err := enc.encode(nil, sortedPointers(goldenTraffic()), dict.intern)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoder wrote %d bytes that differ from the golden %d", len(got), len(want))
			}
		})
	}
}

// TestRecordFiltersMatchScanByVersion pages through filtered queries over
// files of version-3 blocks only, version-4 blocks only, and both in the
// same days, and compares every page with an unfiltered scan filtered
// here.
func TestRecordFiltersMatchScanByVersion(t *testing.T) {
	start := time.Date(2026, 5, 2, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		versions []byte // of each flush
	}{
		{"v3", []byte{3, 3, 3}},
		{"v4", []byte{4, 4, 4}},
		{"mixed", []byte{3, 4, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := storetest.MustOpen(t)
			r, rd := newTestRecorder(t, Options{Store: st})
			g := newTrafficGen(12, start, 0.4) // 3 flushes × 2,500 records: 5.2 hours, two days
			for _, v := range tc.versions {
				r.setBlockVersion(t, v)
				recordAndFlush(t, r, g, 2500)
			}
			all := allRecords(t, rd, RecordQuery{Order: OldestFirst})
			if len(all) != 2500*len(tc.versions) {
				t.Fatalf("%d records", len(all))
			}
			rng := rand.New(rand.NewPCG(13, 14))
			for round := range 16 { // each of the eight filter shapes twice
				pick := all[rng.IntN(len(all))]
				q := RecordQuery{Limit: 1 + rng.IntN(300)}
				switch round % 8 {
				case 0, 1:
					q.KeyID = pick.KeyID
				case 2:
					q.Route = pick.Route
				case 3:
					q.Route, q.Method, q.KeyID = pick.Route, pick.Method, pick.KeyID
				case 4:
					q.Status = pick.Status
				case 5:
					q.StatusClass, q.KeyID = pick.StatusClass(), pick.KeyID
				case 6:
					q.KeyID, q.From, q.To = pick.KeyID, pick.Time.Add(-time.Hour), pick.Time.Add(time.Hour)
				case 7:
					q.Method, q.From, q.To = pick.Method, pick.Time, pick.Time.Add(3*time.Hour)
				}
				t.Run(fmt.Sprint(round), func(t *testing.T) {
					if checkFilteredPages(t, rd, q, all) == 0 {
						t.Fatalf("%+v matches nothing", q)
					}
				})
			}
		})
	}
}

// checkFilteredPages pages through q in both orders, compares the
// records with those of all that match it, and returns how many do.
func checkFilteredPages(t *testing.T, rd *Reader, q RecordQuery, all []Record) int {
	t.Helper()
	f := recordFilter{q: &q, fromMicro: math.MinInt64, toMicro: math.MaxInt64}
	if !q.From.IsZero() {
		f.fromMicro, f.toMicro = ceilMicro(q.From), ceilMicro(q.To)
	}
	var want []Record
	for i := range all {
		if f.match(&all[i]) {
			want = append(want, all[i])
		}
	}
	q.Order = OldestFirst
	if got := pageRecords(t, rd, q, nil); !slices.EqualFunc(got, want, recordsEqual) {
		t.Fatalf("%+v oldest first: %d records, want %d", q, len(got), len(want))
	}
	q.Order = NewestFirst
	slices.Reverse(want)
	if got := pageRecords(t, rd, q, nil); !slices.EqualFunc(got, want, recordsEqual) {
		t.Fatalf("%+v newest first: %d records, want %d", q, len(got), len(want))
	}
	return len(want)
}

// recordAndFlush records the next n records of g and flushes them.
func recordAndFlush(t *testing.T, r *Recorder, g *trafficGen, n int) {
	t.Helper()
	for range n {
		var rec Record
		g.next(&rec)
		r.Record(&rec)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkKeyRowsOfBlock reads one key's rows (106 of 8,192) from a block
// of realistic traffic as a filtered page does, in each block version the
// encoder writes; cpu-ms/op is the reading goroutine's CPU time, which a
// shared machine disturbs less than wall time.
func BenchmarkKeyRowsOfBlock(b *testing.B) {
	recs := benchRecords(maxBlockRecords, 100)
	for _, v := range []byte{blockVersion3, blockVersion4} {
		dict := newMemDict()
		enc := newBlockEncoder()
		enc.version = v
		block, err := enc.encode(nil, sortedPointers(recs), dict.intern)
		if err != nil {
			b.Fatal(err)
		}
		var dec blockDecoder
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			var rows []Record
			loopOnOneThread(b, func() {
				rows, _ = readKeyRows(b, &dec, dict, block, recs[len(recs)/2].KeyID)
			})
			b.ReportMetric(float64(len(rows)), "rows")
			b.ReportMetric(float64(len(block)), "block-bytes")
		})
	}
}

// BenchmarkEncodeBlock encodes a full block of realistic traffic in each
// block version the encoder writes: the part of a flush the format
// decides; and, in the current version, a block of one client's traffic
// (one key, route, address and agent, as a load generator sends).
// cpu-ms/op is the encoding thread's CPU time.
func BenchmarkEncodeBlock(b *testing.B) {
	ptrs := sortedPointers(benchRecords(maxBlockRecords, 1000))
	oneClient := benchRecords(maxBlockRecords, 1000)
	for i := range oneClient {
		r, first := &oneClient[i], &oneClient[0]
		r.Method, r.Route, r.Path, r.KeyID, r.OwnerID = first.Method, first.Route, first.Path, first.KeyID, first.OwnerID
		r.Tier, r.Country, r.UserAgent, r.ClientIP = first.Tier, first.Country, first.UserAgent, first.ClientIP
	}
	cases := []struct {
		name    string
		version byte
		ptrs    []*Record
	}{
		{"v3", blockVersion3, ptrs},
		{"v4", blockVersion4, ptrs},
		{"v4/one-client", blockVersion4, sortedPointers(oneClient)},
	}
	for _, c := range cases {
		ptrs := c.ptrs
		dict := newMemDict()
		enc := newBlockEncoder()
		enc.version = c.version
		b.Run(c.name, func(b *testing.B) {
			var block []byte
			loopOnOneThread(b, func() {
				var err error
				if block, err = enc.encode(block[:0], ptrs, dict.intern); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(len(block))/float64(len(ptrs)), "B/record")
		})
	}
}

// loopOnOneThread runs op in b.Loop on one OS thread and reports that
// thread's CPU time per op as cpu-ms/op.
func loopOnOneThread(b *testing.B, op func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadCPU()
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(threadCPU()-before)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
