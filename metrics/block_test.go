package metrics

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// memDict is an in-memory dictionary for codec tests.
type memDict struct {
	ids  map[string]uint64
	strs []string
}

func newMemDict() *memDict { return &memDict{ids: map[string]uint64{}, strs: []string{""}} }

func (d *memDict) intern(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if id, ok := d.ids[s]; ok {
		return id, nil
	}
	d.strs = append(d.strs, s)
	d.ids[s] = uint64(len(d.strs) - 1)
	return uint64(len(d.strs) - 1), nil
}

func (d *memDict) resolve(id uint64) (string, error) {
	if id >= uint64(len(d.strs)) {
		return "", fmt.Errorf("no id %d", id)
	}
	return d.strs[id], nil
}

func sortedPointers(recs []Record) []*Record {
	ptrs := make([]*Record, len(recs))
	for i := range recs {
		recs[i].sanitize()
		ptrs[i] = &recs[i]
	}
	slices.SortStableFunc(ptrs, func(a, b *Record) int { return a.Time.Compare(b.Time) })
	return ptrs
}

func TestBlockRoundTripRandomRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	enc := newBlockEncoder()
	var dec blockDecoder
	dict := newMemDict()
	for round := range 80 {
		n := 1 + rng.IntN(300)
		if round == 0 {
			n = maxBlockRecords
		}
		recs := make([]Record, n)
		for i := range recs {
			recs[i] = randomRecord(rng)
			if i%3 == 0 { // keys that recur, so owner and tier are predicted (across segments)
				recs[i].KeyID = fmt.Sprint("k", rng.IntN(40))
			}
		}
		ptrs := sortedPointers(recs)
		block, err := enc.encode(nil, ptrs, dict.intern)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.decode(block, dict.resolve, nil)
		if err != nil {
			t.Fatalf("round %d: decode: %v", round, err)
		}
		if len(got) != n {
			t.Fatalf("round %d: %d records, want %d", round, len(got), n)
		}
		for i, want := range ptrs {
			if !reflect.DeepEqual(got[i], *want) {
				t.Fatalf("round %d record %d:\n got %+v\nwant %+v", round, i, got[i], *want)
			}
		}
	}
}

func TestBlockRoundTripRequestIDs(t *testing.T) {
	ids := []string{"", "0", "00", "007", "aw-1", "aw-10", "aw-9", "req-0000000001", "x",
		"123456789012345678", "1234567890123456789", "0123456789012345678", "abc999999999999999999999",
		"9223372036854775807", "18446744073709551615", "99999999999999999999", "a-0", "a-00", "a-01"}
	var recs []Record
	base := time.Unix(1_750_000_000, 0)
	for i, id := range ids {
		recs = append(recs, Record{Time: base.Add(time.Duration(i)), RequestID: id, Status: 200})
	}
	dict := newMemDict()
	block, err := newBlockEncoder().encode(nil, sortedPointers(recs), dict.intern)
	if err != nil {
		t.Fatal(err)
	}
	var dec blockDecoder
	got, err := dec.decode(block, dict.resolve, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		if got[i].RequestID != ids[i] {
			t.Errorf("id %q came back as %q", ids[i], got[i].RequestID)
		}
	}
}

func TestBlockRejectsDamage(t *testing.T) {
	g := newTrafficGen(7, time.Unix(1_750_000_000, 0), 1000)
	recs := make([]Record, 200)
	for i := range recs {
		g.next(&recs[i])
	}
	dict := newMemDict()
	block, err := newBlockEncoder().encode(nil, sortedPointers(recs), dict.intern)
	if err != nil {
		t.Fatal(err)
	}
	var dec blockDecoder
	// Every truncation must be detected; single-byte flips must fail
	// cleanly (no panic) when they are detected.
	for cut := 0; cut < len(block); cut += 1 + cut/16 {
		if _, err := dec.decode(block[:cut], dict.resolve, nil); err == nil {
			t.Fatalf("truncation at %d of %d decoded", cut, len(block))
		} else if !errors.Is(err, ErrCorruptBlock) {
			t.Fatalf("truncation at %d: %v is not ErrCorruptBlock", cut, err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	damaged := make([]byte, len(block))
	for range 1000 {
		copy(damaged, block)
		damaged[rng.IntN(len(damaged))] ^= byte(1 + rng.IntN(255))
		if _, err := dec.decode(damaged, dict.resolve, nil); err != nil && !errors.Is(err, ErrCorruptBlock) {
			t.Fatalf("damage: %v is not ErrCorruptBlock", err)
		}
	}
}

func TestBlockSizeOfRealisticTraffic(t *testing.T) {
	g := newTrafficGen(11, time.Unix(1_750_000_000, 0), 1000)
	dict := newMemDict()
	enc := newBlockEncoder()
	for _, n := range []int{10, 100, 1000, maxBlockRecords} {
		recs := make([]Record, n)
		for i := range recs {
			g.next(&recs[i])
		}
		block, err := enc.encode(nil, sortedPointers(recs), dict.intern)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%5d records: %7d bytes, %.1f bytes/record", n, len(block), float64(len(block))/float64(n))
	}
}

func FuzzBlockDecode(f *testing.F) {
	dict := newMemDict()
	enc := newBlockEncoder()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 3, 40} {
		recs := make([]Record, n)
		for i := range recs {
			recs[i] = randomRecord(rng)
		}
		block, err := enc.encode(nil, sortedPointers(recs), dict.intern)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(block)
	}
	resolve := func(id uint64) (string, error) {
		if id > 1000 {
			return "", errors.New("unknown id")
		}
		return fmt.Sprint("s", id), nil
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var dec blockDecoder
		some, someErr := decodeEveryThird(&dec, b, resolve)
		recs, err := dec.decode(b, resolve, nil)
		if err != nil {
			if !errors.Is(err, ErrCorruptBlock) {
				t.Fatalf("error %v is not ErrCorruptBlock", err)
			}
			if someErr != nil && !errors.Is(someErr, ErrCorruptBlock) {
				t.Fatalf("reading every third record: error %v is not ErrCorruptBlock", someErr)
			}
			return
		}
		// A block that decodes whole decodes in part (as a filtered page
		// reads it: of a version-4 block, only the segments it needs) to
		// the same records.
		if someErr != nil {
			t.Fatalf("whole block decodes, every third record: %v", someErr)
		}
		for i := range some {
			if !reflect.DeepEqual(some[i], recs[3*i]) {
				t.Fatalf("record %d of a partial read differs", 3*i)
			}
		}
		// What decodes must encode and decode to the same records.
		ptrs := make([]*Record, len(recs))
		for i := range recs {
			ptrs[i] = &recs[i]
		}
		d := newMemDict()
		again, err := newBlockEncoder().encode(nil, ptrs, d.intern)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		recs2, err := dec.decode(again, d.resolve, nil)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if !reflect.DeepEqual(recs, recs2) {
			t.Fatalf("re-encoded block differs")
		}
	})
}

// decodeEveryThird decodes rows 0, 3, 6, … of block b as a filtered read
// does: open, load what the selection needs, decode it.
func decodeEveryThird(dec *blockDecoder, b []byte, resolve func(uint64) (string, error)) ([]Record, error) {
	h, body, err := parseBlockHeader(b)
	if err != nil {
		return nil, err
	}
	view, err := dec.open(h, body)
	if err != nil {
		return nil, err
	}
	sel := make([]bool, h.count)
	for i := 0; i < len(sel); i += 3 {
		sel[i] = true
	}
	if err := dec.load(view, sel); err != nil {
		return nil, err
	}
	return decodeColumns(view, resolve, nil, sel)
}
