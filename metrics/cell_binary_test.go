package metrics

import (
	"errors"
	"testing"
	"time"
)

func TestCellBinaryRoundTrip(t *testing.T) {
	var c Cell
	for i, st := range []int{200, 201, 302, 404, 429, 503, 101} {
		c.Add(&Record{Time: time.Unix(0, 0), Status: st, Latency: time.Duration(i*7+1) * time.Millisecond,
			RequestBytes: int64(i), ResponseBytes: int64(10 * i)})
	}
	b, err := c.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	var got Cell
	if err := got.UnmarshalBinary(b[len("prefix"):]); err != nil {
		t.Fatal(err)
	}
	if got.Count != c.Count || got.Status4xx != c.Status4xx || got.BytesOut != c.BytesOut ||
		got.LatencyMax != c.LatencyMax || got.LatencyQuantile(0.5) != c.LatencyQuantile(0.5) {
		t.Fatalf("round trip: got %+v, want %+v", got, c)
	}
	if err := got.UnmarshalBinary(b[len("prefix") : len(b)-1]); !errors.Is(err, ErrCorruptCell) {
		t.Fatalf("truncated cell: err = %v, want ErrCorruptCell", err)
	}
}
