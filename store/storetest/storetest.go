// Package storetest opens real stores for tests.
package storetest

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/apiwarden/apiwarden/store"
)

// MustOpen opens a store in a fresh temporary directory with fsync off and
// registers a cleanup that checks the file's consistency and closes it.
func MustOpen(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("store consistency: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// FileHolds returns the names of the needles whose bytes occur anywhere in
// the file at path (a data file, free pages included), sorted. Privacy
// tests use it to show what an erasure or minimisation left on disk.
func FileHolds(t testing.TB, path string, needles map[string][]byte) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for name, n := range needles {
		if bytes.Contains(data, n) {
			found = append(found, name)
		}
	}
	slices.Sort(found)
	return found
}
