package metrics

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// Benchmarks for the figures the metrics issue sets (to be recorded in
// docs/BENCHMARKS.md):
//
//	go test -run '^$' -bench 'Record$|RecordParallel' -benchmem ./metrics/
//	go test -run '^$' -bench FlushThroughput -benchtime 20x ./metrics/
//	go test -run '^$' -bench BytesOnDisk -benchtime 1x ./metrics/
//	go test -run '^$' -bench 'CellMerge|Histogram' -benchmem ./metrics/
//	go test -run '^$' -bench 'AnalyticsReads|RecordsPage' -benchmem ./metrics/
//	go test -run '^$' -bench 'DecodeBlock|RecordsPage' -benchmem ./metrics/

func benchRecords(n int, rps float64) []Record {
	g := newTrafficGen(42, time.Date(2026, 6, 6, 14, 0, 0, 0, time.UTC), rps)
	recs := make([]Record, n)
	for i := range recs {
		g.next(&recs[i])
	}
	return recs
}

// resetBuffer empties the buffer without a flush, so the benchmark
// measures the accepting path of Record, not the writer.
func (r *Recorder) resetBuffer() {
	r.mu.Lock()
	r.buf = r.buf[:0]
	r.mu.Unlock()
}

func BenchmarkRecord(b *testing.B) {
	r, err := New(Options{Store: storetest.MustOpen(b), BufferSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(1024, 1000)
	b.Run("accept", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !r.Record(&recs[i&1023]) {
				r.resetBuffer()
			}
			i++
		}
	})
	b.Run("drop", func(b *testing.B) {
		for r.Record(&recs[0]) {
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r.Record(&recs[i&1023])
			i++
		}
		r.resetBuffer()
	})
}

func BenchmarkRecordParallel(b *testing.B) {
	r, err := New(Options{Store: storetest.MustOpen(b), BufferSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(1024, 1000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(1024)
		for pb.Next() {
			if !r.Record(&recs[i&1023]) {
				r.resetBuffer()
			}
			i++
		}
	})
}

// BenchmarkRecordWithWriter measures Record while the real writer flushes
// to the store, on the same cores; drops are reported.
func BenchmarkRecordWithWriter(b *testing.B) {
	r, err := New(Options{Store: storetest.MustOpen(b), FlushInterval: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- r.Run(context.Background()) }()
	recs := benchRecords(1<<14, 1000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(recs))
		for pb.Next() {
			r.Record(&recs[i%len(recs)])
			i++
		}
	})
	b.StopTimer()
	r.Stop()
	<-done
	st := r.Stats()
	b.ReportMetric(float64(st.Dropped)/float64(st.Accepted+st.Dropped)*100, "%dropped")
}

// BenchmarkFlushThroughput feeds realistic records through RecordBatch and
// Flush in batches of 16,384 (a flush at saturation: the writer flushes
// when the default buffer is half full) and, in the same run, appends the
// same number of 120-byte values to a plain bucket in 1,000-value
// transactions. Both stores skip fsync.
func BenchmarkFlushThroughput(b *testing.B) {
	const batch = 16384
	st := storetest.MustOpen(b)
	r, err := New(Options{Store: st, BufferSize: 2 * batch})
	if err != nil {
		b.Fatal(err)
	}
	// Ten minutes of traffic at 400 requests a second, replayed with the
	// times shifted forward on every pass so cells keep advancing.
	recs := benchRecords(240000, 400)
	span := recs[len(recs)-1].Time.Sub(recs[0].Time) + time.Second
	work := make([]Record, batch)
	b.ReportAllocs()
	next, pass := 0, 0
	total := 0
	for b.Loop() {
		b.StopTimer() // preparing the batch is the caller's work
		for i := range work {
			if next == len(recs) {
				next, pass = 0, pass+1
			}
			work[i] = recs[next]
			work[i].Time = work[i].Time.Add(time.Duration(pass) * span)
			next++
		}
		b.StartTimer()
		if n := r.RecordBatch(work); n != batch {
			b.Fatalf("buffer took %d", n)
		}
		if err := r.Flush(); err != nil {
			b.Fatal(err)
		}
		total += batch
	}
	ours := float64(total) / b.Elapsed().Seconds()

	plain := storetest.MustOpen(b)
	value := make([]byte, 120)
	start := time.Now()
	for done := 0; done < total; {
		err := plain.Update(func(tx *store.Tx) error {
			bkt, err := tx.CreateBucketIfNotExists([]byte("bench"))
			if err != nil {
				return err
			}
			for range 1000 {
				seq, _ := bkt.NextSequence()
				binary.BigEndian.PutUint64(value, seq)
				if err := bkt.Put(binary.BigEndian.AppendUint64(nil, seq), append([]byte(nil), value...)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += 1000
	}
	plainRate := float64(total) / time.Since(start).Seconds()
	b.ReportMetric(ours, "records/s")
	b.ReportMetric(plainRate, "bolt-120B-records/s")
	b.ReportMetric(ours/plainRate, "ratio")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/record")
}

// BenchmarkBytesOnDisk writes a million realistic records as a live
// server would (one flush a second) and reports the data file's size per
// record. "file-B/record" is os.Stat's size, which includes bbolt's growth
// slack (the file grows in 16 MiB steps past 16 MiB); "used-B/record"
// counts the pages bbolt has handed out (its high-water mark).
func BenchmarkBytesOnDisk(b *testing.B) {
	const total = 1_000_000
	for _, rps := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("rps=%d", rps), func(b *testing.B) {
			for b.Loop() {
				st := storetest.MustOpen(b)
				r, err := New(Options{Store: st, BufferSize: rps})
				if err != nil {
					b.Fatal(err)
				}
				g := newTrafficGen(7, time.Date(2026, 6, 6, 14, 0, 0, 0, time.UTC), float64(rps))
				batch := make([]Record, rps) // one second of traffic
				for sent := 0; sent < total; sent += rps {
					for i := range batch {
						g.next(&batch[i])
					}
					r.RecordBatch(batch)
					if err := r.Flush(); err != nil {
						b.Fatal(err)
					}
				}
				var used int64
				_ = st.View(func(tx *store.Tx) error { used = tx.Size(); return nil })
				fi, err := os.Stat(st.Path())
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(fi.Size())/total, "file-B/record")
				b.ReportMetric(float64(used)/total, "used-B/record")
				b.ReportMetric(float64(st.Stats().FreePages*4096)/total, "free-B/record")
			}
		})
	}
}

// sampleCell is an hour of one route's traffic.
func sampleCell(rng *rand.Rand, n int) *Cell {
	c := &Cell{}
	for range n {
		rec := Record{Status: []int{200, 200, 200, 404, 500}[rng.IntN(5)], ResponseBytes: 2000,
			Latency: time.Duration(math.Exp(rng.NormFloat64()*0.8+math.Log(40)) * float64(time.Millisecond))}
		c.Add(&rec)
	}
	return c
}

func BenchmarkCellMerge(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	cells := []*Cell{sampleCell(rng, 5000), sampleCell(rng, 300), sampleCell(rng, 20000)}
	b.Run("merge", func(b *testing.B) {
		var sum Cell
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sum.Merge(cells[i%3])
			i++
		}
	})
	b.Run("decode+merge", func(b *testing.B) {
		enc := cells[0].appendBinary(nil)
		var sum, scratch Cell
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if err := scratch.decode(enc); err != nil {
				b.Fatal(err)
			}
			sum.Merge(&scratch)
		}
	})
	b.Run("encode", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = cells[0].appendBinary(buf[:0])
		}
	})
}

// BenchmarkAnalyticsReads times the reads the analytics goals name, over
// 90 days of rollups for 50 routes, 1,000 keys, 300 owners and 4 tiers
// (hourly cells for routes, tiers, status classes and total; daily cells
// for everything; hourly key and owner cells for a tenth of the hours).
func BenchmarkAnalyticsReads(b *testing.B) {
	st := storetest.MustOpen(b)
	end := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(0, 0, -90)
	rng := rand.New(rand.NewPCG(2, 2))
	cellValue := sampleCell(rng, 2000).appendBinary(nil)
	type dimValues struct {
		dim    Dimension
		values []string
		hourly float64 // share of hours with a cell
	}
	var dims []dimValues
	add := func(dim Dimension, hourly float64, n int, format string) {
		dv := dimValues{dim: dim, hourly: hourly}
		for i := range n {
			dv.values = append(dv.values, fmt.Sprintf(format, i))
		}
		dims = append(dims, dv)
	}
	add(DimTotal, 1, 1, "")
	add(DimRoute, 1, 50, "/api/resource%02d/*")
	add(DimTier, 1, 4, "tier%d")
	add(DimStatusClass, 1, 4, "%dxx")
	add(DimKey, 0.1, 1000, "key_%08d")
	add(DimOwner, 0.1, 300, "org_%05d")
	if dims[0].values[0] != "" {
		dims[0].values = []string{""}
	}
	cells := 0
	for _, iv := range []Interval{Hourly, Daily} {
		first, last := iv.number(start), iv.number(end)-1
		for _, dv := range dims {
			for _, v := range dv.values {
				var keys [][]byte
				for n := first; n <= last; n++ {
					if iv == Hourly && dv.hourly < 1 && rng.Float64() >= dv.hourly {
						continue
					}
					keys = append(keys, appendCellKey(nil, dv.dim, v, n))
				}
				err := st.Update(func(tx *store.Tx) error {
					bkt := tx.Bucket(iv.bucket())
					for _, k := range keys {
						if err := bkt.Put(k, cellValue); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				cells += len(keys)
			}
		}
	}
	b.Logf("%d cells, file %d MiB", cells, st.Stats().FileSize>>20)
	rd := NewReader(st)
	ctx := context.Background()
	month := CellQuery{From: end.AddDate(0, -1, 0), To: end}
	for _, q := range []struct {
		name string
		run  func() error
	}{
		{"summary-month-hourly", func() error {
			q := month
			q.Interval, q.Dimension = Hourly, DimTotal
			c, err := rd.Sum(ctx, q)
			if err == nil && c.Count == 0 {
				err = fmt.Errorf("empty")
			}
			_ = c.LatencyQuantile(0.95)
			return err
		}},
		{"summary-month-daily", func() error {
			q := month
			q.Interval, q.Dimension = Daily, DimTotal
			_, err := rd.Sum(ctx, q)
			return err
		}},
		{"series-90d-daily", func() error {
			s, err := rd.Series(ctx, CellQuery{Interval: Daily, Dimension: DimTotal, From: start, To: end})
			if err == nil && len(s[0].Points) != 90 {
				err = fmt.Errorf("%d points", len(s[0].Points))
			}
			return err
		}},
		{"top20-routes-30d", func() error {
			tot, err := rd.Totals(ctx, CellQuery{Interval: Daily, Dimension: DimRoute, AllValues: true, From: end.AddDate(0, 0, -30), To: end})
			if err == nil && len(tot) != 50 {
				err = fmt.Errorf("%d routes", len(tot))
			}
			for _, vc := range tot[:min(20, len(tot))] {
				_ = vc.Cell.LatencyQuantile(0.95)
			}
			return err
		}},
		{"hourly-7d-by-tier", func() error {
			s, err := rd.Series(ctx, CellQuery{Interval: Hourly, Dimension: DimTier, AllValues: true, From: end.AddDate(0, 0, -7), To: end})
			if err == nil && (len(s) != 4 || len(s[0].Points) != 168) {
				err = fmt.Errorf("%d series", len(s))
			}
			return err
		}},
		{"top-keys-30d", func() error {
			tot, err := rd.Totals(ctx, CellQuery{Interval: Daily, Dimension: DimKey, AllValues: true, From: end.AddDate(0, 0, -30), To: end})
			if err == nil && len(tot) != 1000 {
				err = fmt.Errorf("%d keys", len(tot))
			}
			return err
		}},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecordsPage reads pages of 100 raw records, newest first, from
// a day of 400,000 records, unfiltered, filtered by a common key (and
// route) and by a rare one.
func BenchmarkRecordsPage(b *testing.B) {
	st := storetest.MustOpen(b)
	r, err := New(Options{Store: st, BufferSize: 1 << 15})
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(400000, 5)
	// A key with 8 records, each in a different block: a page of it reads
	// every block of the day.
	const rare = "key_rare"
	for i := 25000; i < len(recs); i += 50000 {
		recs[i].KeyID = rare
	}
	for chunk := range slices.Chunk(recs, 1<<14) {
		r.RecordBatch(chunk)
		if err := r.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	rd := NewReader(st)
	for _, q := range []RecordQuery{{}, {KeyID: recs[0].KeyID}, {KeyID: recs[0].KeyID, Route: recs[0].Route}, {KeyID: rare}} {
		b.Run(fmt.Sprintf("key=%q,route=%q", q.KeyID, q.Route), func(b *testing.B) {
			b.ReportAllocs()
			q.Cursor = ""
			for b.Loop() {
				page, err := rd.Records(context.Background(), q)
				if err != nil {
					b.Fatal(err)
				}
				q.Cursor = page.Next // walk on; start again at the end
			}
		})
	}
}

// BenchmarkDecodeBlock decodes one full block of realistic records, every
// row and then one row in 100, the work a raw-record page does per block
// it opens.
func BenchmarkDecodeBlock(b *testing.B) {
	recs := benchRecords(maxBlockRecords, 100)
	dict := newMemDict()
	block, err := newBlockEncoder().encode(nil, sortedPointers(recs), dict.intern)
	if err != nil {
		b.Fatal(err)
	}
	h, body, err := parseBlockHeader(block)
	if err != nil {
		b.Fatal(err)
	}
	var dec blockDecoder
	sparse := make([]bool, h.count)
	for i := 0; i < len(sparse); i += 100 {
		sparse[i] = true
	}
	for _, bc := range []struct {
		name string
		sel  []bool
	}{{"all", nil}, {"sparse", sparse}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var out []Record
			for b.Loop() {
				view, err := dec.open(h, body)
				if err == nil {
					err = dec.load(view, bc.sel)
				}
				if err != nil {
					b.Fatal(err)
				}
				if out, err = decodeColumns(view, dict.resolve, out[:0], bc.sel); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
