// Package storetest opens real stores for tests.
package storetest

import (
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
