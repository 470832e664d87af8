package metrics_test

import (
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// A new, empty data file starts its erasure mark at the latest erasure;
// one holding usage data (a file from before marks were kept) at 0; once
// set, the mark only moves forward.
func TestErasureMarkStartsByContent(t *testing.T) {
	empty := storetest.MustOpen(t)
	e := metrics.NewEraser(empty, nil, nil)
	if _, set, err := metrics.NewReader(empty).ErasureMark(); err != nil || set {
		t.Fatalf("a new file's mark set=%v, err %v", set, err)
	}
	if mark, err := e.LoadErasureMark(42); err != nil || mark != 42 {
		t.Fatalf("an empty file's mark %d, %v; want 42", mark, err)
	}
	if mark, err := e.LoadErasureMark(99); err != nil || mark != 42 {
		t.Fatalf("the mark moved to %d, %v, on a second load; want 42", mark, err)
	}

	full := storetest.MustOpen(t)
	rec, err := metrics.New(metrics.Options{Store: full})
	if err != nil {
		t.Fatal(err)
	}
	rec.Record(&metrics.Record{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), KeyID: "key_1", Method: "GET", Route: "/a", Status: 200})
	// Not flushed: LoadErasureMark flushes first, so the buffered record
	// counts as data.
	e = metrics.NewEraser(full, rec, nil)
	if mark, err := e.LoadErasureMark(42); err != nil || mark != 0 {
		t.Fatalf("a file with data starts its mark at %d, %v; want 0", mark, err)
	}
	for _, id := range []int64{7, 5} {
		if err := e.SetErasureMark(id); err != nil {
			t.Fatal(err)
		}
	}
	if mark, set, err := metrics.NewReader(full).ErasureMark(); err != nil || !set || mark != 7 {
		t.Fatalf("mark %d (set %v, %v), want 7: it never moves back", mark, set, err)
	}
}
