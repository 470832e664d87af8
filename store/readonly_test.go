package store_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// A read-only open reads a closed data file without changing it, refuses
// writes, refuses a file a running apiwarden holds, and says so when the
// file is missing.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	if _, err := store.OpenReadOnly(path, store.Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *store.Tx) error {
		b, err := tx.MustBucket(store.BucketKeys)
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenReadOnly(path, store.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("file held by a running store: %v, want ErrLocked", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := store.OpenReadOnly(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var got string
	if err := ro.View(func(tx *store.Tx) error {
		got = string(tx.Bucket(store.BucketKeys).Get([]byte("k")))
		return nil
	}); err != nil || got != "v" {
		t.Fatalf("read %q, %v; want v", got, err)
	}
	err = ro.Update(func(tx *store.Tx) error { return nil })
	if !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("write on a read-only store: %v, want ErrReadOnly", err)
	}
}
