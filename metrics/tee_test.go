package metrics

import (
	"testing"

	"github.com/apiwarden/apiwarden/store/storetest"
)

// countingView is a LiveView that remembers the request ids it saw.
type countingView struct{ ids []string }

func (v *countingView) Record(rec *Record) bool {
	v.ids = append(v.ids, rec.RequestID)
	return true
}

func TestTeeLiveSeesWhatDiskTook(t *testing.T) {
	r, err := New(Options{Store: storetest.MustOpen(t), BufferSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	live := &countingView{}
	tee := Tee{Recorder: r, Live: live}

	if !tee.Record(&Record{RequestID: "a"}) {
		t.Fatal("Record into an empty buffer refused")
	}
	batch := []Record{{RequestID: "b"}, {RequestID: "c"}, {RequestID: "d"}}
	if n := tee.RecordBatch(batch); n != 2 {
		t.Fatalf("RecordBatch took %d, want the 2 that fit", n)
	}
	// The buffer is full: the disk refuses, the live view still counts a
	// single record (it only looks) but never a refused batch record.
	if tee.Record(&Record{RequestID: "e"}) {
		t.Fatal("Record into a full buffer accepted")
	}
	want := []string{"a", "b", "c", "e"}
	if len(live.ids) != len(want) {
		t.Fatalf("live view saw %v, want %v", live.ids, want)
	}
	for i := range want {
		if live.ids[i] != want[i] {
			t.Fatalf("live view saw %v, want %v", live.ids, want)
		}
	}
	if s := r.Stats(); s.Accepted != 3 || s.Dropped != 2 {
		t.Errorf("recorder accepted %d, dropped %d; want 3 and 2", s.Accepted, s.Dropped)
	}
}
