package metrics

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
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

// positionByIDList is what ascendingPosition must return: the position
// of id read through idList, which stops at the first id past it.
func positionByIDList(list []byte, id uint64) (int, error) {
	l := newIDList(blockColumn{table: list, ascending: true})
	for p := 0; ; p++ {
		v, ok := l.next()
		switch {
		case !ok:
			return -1, l.err()
		case v == id:
			return p, nil
		case v > id:
			return -1, nil
		}
	}
}

// ascendingPosition agrees with idList on every id of sound lists, on
// ids between and past them, and on damaged lists.
func TestAscendingPositionMatchesIDList(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 1))
	for round := range 200 {
		var list []byte
		var ids []uint64
		id := rng.Uint64N(3)
		for i := range rng.IntN(300) {
			if i > 0 {
				delta := 1 + rng.Uint64N([]uint64{1, 4, 200, 1 << 40}[rng.IntN(4)])
				list = binary.AppendUvarint(list, delta)
				id += delta
			} else {
				list = binary.AppendUvarint(list, id)
			}
			ids = append(ids, id)
		}
		if round%3 == 2 && len(list) > 0 { // damaged: a byte changed or the list cut
			list = slices.Clone(list)
			if rng.IntN(2) == 0 {
				list[rng.IntN(len(list))] = byte(rng.IntN(256))
			} else {
				list = list[:rng.IntN(len(list))]
			}
		}
		probes := []uint64{0, math.MaxUint64}
		for _, v := range ids {
			probes = append(probes, v, v+1, v-1)
		}
		for _, probe := range probes {
			got, gotErr := ascendingPosition(list, probe)
			want, wantErr := positionByIDList(list, probe)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("round %d, id %d in % x: %d %v, want %d %v", round, probe, list, got, gotErr, want, wantErr)
			}
		}
	}
}

func FuzzAscendingPosition(f *testing.F) {
	f.Add([]byte{3, 2, 10}, uint64(5))
	f.Add([]byte{1, 0x80, 0x01}, uint64(129))
	f.Add([]byte{3, 0}, uint64(4))
	f.Add([]byte{3, 0x80}, uint64(9))
	f.Fuzz(func(t *testing.T, list []byte, id uint64) {
		got, gotErr := ascendingPosition(list, id)
		want, wantErr := positionByIDList(list, id)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("id %d in % x: %d %v, want %d %v", id, list, got, gotErr, want, wantErr)
		}
	})
}
