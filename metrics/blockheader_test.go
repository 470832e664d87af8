package metrics

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"
)

func TestAscendingIDList(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table []byte
		want  []uint64
		bad   bool
	}{
		{"empty", nil, nil, false},
		{"one", []byte{7}, []uint64{7}, false},
		{"id zero first", []byte{0, 1, 2}, []uint64{0, 1, 3}, false},
		{"deltas", []byte{3, 2, 10}, []uint64{3, 5, 15}, false},
		{"two-byte delta", []byte{1, 0x80, 0x01}, []uint64{1, 129}, false},
		{"repeated id", []byte{3, 0}, []uint64{3}, true},
		{"truncated", []byte{3, 0x80}, []uint64{3}, true},
		{"overflow", binary.AppendUvarint(binary.AppendUvarint(nil, math.MaxUint64), 1), []uint64{math.MaxUint64}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newIDList(blockColumn{table: tc.table, ascending: true})
			var got []uint64
			for {
				id, ok := l.next()
				if !ok {
					break
				}
				got = append(got, id)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ids %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("ids %v, want %v", got, tc.want)
				}
			}
			if (l.err() != nil) != tc.bad {
				t.Fatalf("error %v, want one: %v", l.err(), tc.bad)
			}
			for p, id := range tc.want {
				if got, err := dictPosition(blockColumn{table: tc.table, ascending: true}, id); got != p || err != nil {
					t.Errorf("position of %d: %d %v, want %d", id, got, err, p)
				}
			}
		})
	}
}

// mayHoldKey must say yes for every key a block holds, and no for the
// others as far as the block version allows.
func TestBlockMayHoldKey(t *testing.T) {
	g := newTrafficGen(3, time.Unix(1_750_000_000, 0), 1000)
	dict := newMemDict()
	enc := newBlockEncoder()
	var blocks [][]byte
	var held []map[string]bool
	for _, n := range []int{1, 50, 400} {
		recs := make([]Record, n)
		keys := map[string]bool{}
		for i := range recs {
			g.next(&recs[i])
			keys[recs[i].KeyID] = true
		}
		b, err := enc.encode(nil, sortedPointers(recs), dict.intern)
		if err != nil {
			t.Fatal(err)
		}
		blocks, held = append(blocks, b), append(held, keys)
	}
	v2, _, _ := readGolden(t, 2)
	blocks, held = append(blocks, v2), append(held, nil)
	for i, b := range blocks {
		h, _, err := parseBlockHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		for id, s := range dict.strs {
			ok, err := h.mayHoldKey(uint64(id))
			want := held[i] == nil || held[i][s]
			if err != nil || ok != want {
				t.Fatalf("block %d (version %d), %q: %v %v, want %v", i, h.version, s, ok, err, want)
			}
		}
	}

	// A damaged list is an error, not a skip.
	h, _, err := parseBlockHeader(blocks[2])
	if err != nil {
		t.Fatal(err)
	}
	h.keys = append(append([]byte(nil), h.keys[:1]...), 0)
	if _, err := h.mayHoldKey(math.MaxUint64); !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("damaged key list: %v", err)
	}
}
