package metrics

import (
	"encoding/binary"
	"math"
	"testing"
)

// uvarintAt reads what binary.Uvarint reads, at any index.
func FuzzUvarintAt(f *testing.F) {
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1 << 35, math.MaxUint64} {
		f.Add(binary.AppendUvarint([]byte{0x80}, v), 1)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0) // past 64 bits
	f.Add([]byte{0x80, 0x80}, 0)                                                 // truncated
	f.Fuzz(func(t *testing.T, b []byte, i int) {
		if i < 0 || i > len(b) {
			return
		}
		v, next := uvarintAt(b, i)
		want, n := binary.Uvarint(b[i:])
		if n <= 0 {
			if next != -1 {
				t.Fatalf("% x at %d: %d, %d; binary.Uvarint fails", b, i, v, next)
			}
			return
		}
		if v != want || next != i+n {
			t.Fatalf("% x at %d: %d, %d; want %d, %d", b, i, v, next, want, i+n)
		}
	})
}
