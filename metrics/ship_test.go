package metrics

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Blocks of one flush fall into several day buckets; BatchesAfter hands
// them out in sequence order across days, respects the record bound and
// the cursor, and the cursor never moves back.
func TestBatchesAfterMergesDays(t *testing.T) {
	rec, rd := newTestRecorder(t, Options{})
	day := time.Date(2026, 5, 1, 23, 59, 59, 0, time.UTC)
	id := 0
	for flush := range 3 {
		for i := range 4 { // two records on each side of midnight
			id++
			rec.Record(&Record{Time: day.Add(time.Duration(i-1) * time.Second), RequestID: fmt.Sprint(id), Status: 200 + flush})
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	all, err := rd.BatchesAfter(context.Background(), 0, 1<<20)
	if err != nil || len(all) != 6 {
		t.Fatalf("%d batches, %v; want 6 (3 flushes × 2 days)", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("batch %d has seq %d after %d", i, all[i].Seq, all[i-1].Seq)
		}
	}
	if all[0].Records[0].Status != 200 || all[5].Records[0].Status != 202 || len(all[0].Records) != 2 {
		t.Fatalf("batches out of flush order: %+v", all)
	}
	b, err := rd.ShipBacklog()
	if err != nil || b.Records != 12 || !b.Oldest.Equal(day.Add(-time.Second)) {
		t.Fatalf("backlog %+v, %v", b, err)
	}

	first, _ := rd.BatchesAfter(context.Background(), 0, 3)
	if len(first) != 1 {
		t.Fatalf("a bound of 3 records gave %d blocks of 2, want 1", len(first))
	}
	if err := rd.SetShipCursor(all[3].Seq); err != nil {
		t.Fatal(err)
	}
	if err := rd.SetShipCursor(all[1].Seq); err != nil { // behind: ignored
		t.Fatal(err)
	}
	if cur, err := rd.ShipCursor(); err != nil || cur != all[3].Seq {
		t.Fatalf("cursor %d, %v; want %d", cur, err, all[3].Seq)
	}
	rest, err := rd.BatchesAfter(context.Background(), all[3].Seq, 1<<20)
	if err != nil || len(rest) != 2 || rest[0].Seq != all[4].Seq {
		t.Fatalf("after the cursor: %+v, %v", rest, err)
	}
	if b, _ := rd.ShipBacklog(); b.Records != 4 {
		t.Fatalf("backlog after the cursor: %+v, want 4 records", b)
	}
}
