package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store/storetest"
)

// The spool's costs for a shipper (docs/BENCHMARKS.md):
//
//	go test -run '^$' -bench Spool -benchtime 50x ./metrics/
//
// A spool of 1M records in 1,000 blocks of 1,000 (an outage at 1,000
// req/s and one flush a second): the header scan every shipping round
// makes twice (the bound and the backlog report), and moving the cursor
// past ten blocks and deleting them once PostgreSQL has them.
func BenchmarkSpool(b *testing.B) {
	rec, err := New(Options{Store: storetest.MustOpen(b), BufferSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	rd := NewReader(rec.st)
	recs := benchRecords(1000, 1000)
	flushBlocks := func(n int) {
		for range n {
			for i := range recs {
				recs[i].Time = recs[i].Time.Add(time.Second)
				rec.Record(&recs[i])
			}
			if err := rec.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	flushBlocks(1000)
	b.Run("backlog-scan", func(b *testing.B) {
		for b.Loop() {
			if bl, err := rd.ShipBacklog(); err != nil || bl.Records != 1_000_000 {
				b.Fatalf("%+v, %v", bl, err)
			}
		}
	})
	b.Run("bound-check", func(b *testing.B) {
		for b.Loop() {
			if d, err := rd.DropUnshipped(context.Background(), 2_000_000); err != nil || d.Blocks != 0 {
				b.Fatalf("%+v, %v", d, err)
			}
		}
	})
	b.Run("trim-10-blocks", func(b *testing.B) {
		upTo, _ := rd.ShipCursor()
		for b.Loop() {
			b.StopTimer()
			flushBlocks(10) // the blocks trimmed, after the 1,000 waiting
			b.StartTimer()
			upTo += 10
			if err := rd.SetShipCursor(upTo); err != nil {
				b.Fatal(err)
			}
			if n, err := rd.TrimShipped(context.Background(), upTo); err != nil || n != 10 {
				b.Fatalf("%d, %v", n, err)
			}
		}
	})
}
