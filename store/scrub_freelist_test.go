package store

import (
	"bytes"
	"os"
	"testing"
)

// freelistIDs reads exactly the pages bbolt calls free, so the scrub
// normally skips asking about every page of the file.
func TestFreelistIDsMatchBolt(t *testing.T) {
	s, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		err := s.Update(func(tx *Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte{byte(i % 5)}, bytes.Repeat([]byte{byte(i)}, 3000*(1+i%4)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	f, err := os.Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, ok := freelistIDs(f, int64(s.db.Info().PageSize))
	if !ok || len(ids) == 0 {
		t.Fatalf("freelistIDs: %v, %v", ids, ok)
	}
	listed := map[uint64]bool{}
	for _, id := range ids {
		listed[id] = true
	}
	pages := tx.Size() / int64(s.db.Info().PageSize)
	for id := int64(2); id < pages; id++ {
		info, err := tx.Page(int(id))
		if err != nil {
			t.Fatal(err)
		}
		if free := info != nil && info.Type == "free"; free != listed[uint64(id)] {
			t.Errorf("page %d: bbolt says free %v, the freelist page %v", id, free, listed[uint64(id)])
		}
	}
}
