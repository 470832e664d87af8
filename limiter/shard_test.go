package limiter

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
	"unsafe"
)

func TestEntryIsTwoCacheLines(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes differ on 32-bit platforms")
	}
	if got := unsafe.Sizeof(entry{}); got != 128 {
		t.Fatalf("entry is %d bytes; keep it at 128 so it spans exactly two cache lines", got)
	}
}

// TestShardTableMatchesModel drives one shard's table with random inserts,
// lookups and removals over a handful of hash values, so that keys collide,
// probe runs wrap around the end of the table and removals shift entries
// back, and checks it against a map after every step.
func TestShardTableMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var s shard
	s.init(1 << 20) // no eviction: the model owns what is held
	model := map[entryKey]uint32{}
	keys := make([]entryKey, 200)
	hashOf := map[entryKey]uint32{}
	for i := range keys {
		keys[i] = entryKey{subject: Subject("s" + strconv.Itoa(i%50)), route: []RouteBucket{"", "r"}[i/50%2]}
		if i >= 100 {
			keys[i].route = RouteBucket("q" + strconv.Itoa(i))
		}
		// Five hash values, one of them at the top of any table size so
		// its run wraps to slot 0.
		hashOf[keys[i]] = []uint32{1, 2, 3, 0xffffffff, 0x80000000}[rng.IntN(5)]
	}
	for step := range 20_000 {
		k := keys[rng.IntN(len(keys))]
		h := hashOf[k]
		switch op := rng.IntN(3); {
		case op < 2:
			i, _ := s.get(k, h, -1, 0, 0)
			if s.entries[i].key != k || s.hashes[i] != h {
				t.Fatalf("step %d: get(%v) returned the slot of %v", step, k, s.entries[i].key)
			}
			s.entries[i].used = int64(step) // mark it, to see the entry survives moves
			model[k] = uint32(step)
		default:
			i := s.find(k, h)
			if _, ok := model[k]; ok != (i >= 0) {
				t.Fatalf("step %d: find(%v) = %d, model has it: %v", step, k, i, ok)
			}
			if i >= 0 {
				s.removeAt(uint32(i))
				delete(model, k)
			}
		}
		if s.count != len(model) {
			t.Fatalf("step %d: %d entries, model has %d", step, s.count, len(model))
		}
		for mk, mark := range model {
			i := s.find(mk, hashOf[mk])
			if i < 0 || s.entries[i].used != int64(mark) {
				t.Fatalf("step %d: %v lost after a move (index %d)", step, mk, i)
			}
		}
	}
}

func TestSweepWithWrappedProbeRuns(t *testing.T) {
	var s shard
	s.init(1 << 20)
	// Every key hashes to the last slot, so the run wraps; alternate idle
	// and busy entries so each removal shifts the rest.
	for i := range 6 {
		k := entryKey{subject: Subject(strconv.Itoa(i))}
		j, _ := s.get(k, 0xffffffff, -1, 0, 0)
		if i%2 == 1 {
			s.entries[j].hour = bucket{full: int64(time.Hour), capacity: 1}
		}
	}
	if n := s.sweep(0, 0); n != 3 {
		t.Fatalf("swept %d, want the 3 idle entries", n)
	}
	for i := range 6 {
		k := entryKey{subject: Subject(strconv.Itoa(i))}
		if got := s.find(k, 0xffffffff) >= 0; got != (i%2 == 1) {
			t.Errorf("entry %d held: %v", i, got)
		}
	}
}
