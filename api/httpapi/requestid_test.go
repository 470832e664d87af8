package httpapi

import (
	"strings"
	"sync"
	"testing"
)

// TestRequestIDsUnique: ids made from many goroutines at once are all
// distinct and all the set's shape: its prefix and a decimal number.
func TestRequestIDsUnique(t *testing.T) {
	ids := NewRequestIDs()
	const workers, each = 16, 5000
	got := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 32)
			for range each {
				got[w] = append(got[w], string(ids.AppendKeep(buf[:0], "")))
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, list := range got {
		for _, id := range list {
			n, ok := strings.CutPrefix(id, ids.prefix)
			if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
				t.Fatalf("id %q: not the prefix %q and a number", id, ids.prefix)
			}
			if seen[id] {
				t.Fatalf("id %q made twice", id)
			}
			seen[id] = true
		}
	}
}

// BenchmarkRequestIDs: a new id appended to a request's buffer, as the
// lean proxy makes one for every request without an X-Request-Id of its
// own; serially and from every P at once.
func BenchmarkRequestIDs(b *testing.B) {
	ids := NewRequestIDs()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 32)
		for b.Loop() {
			buf = ids.AppendKeep(buf[:0], "")
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 0, 32)
			for pb.Next() {
				buf = ids.AppendKeep(buf[:0], "")
			}
		})
	})
}
