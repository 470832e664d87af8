package gateway

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestKeptBytesNeverRewritten: strings handed out by keptBytes, from
// goroutines at once, small ones sharing slabs and large ones apart,
// still read as they were written after many more were handed out.
func TestKeptBytesNeverRewritten(t *testing.T) {
	var k keptBytes
	const goroutines, each = 8, 3000
	got := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				want := want(g, i)
				s := k.take(len(want))
				got[g] = append(got[g], k.give(s, append(s.room(), want...)))
			}
		}()
	}
	wg.Wait()
	for g := range goroutines {
		for i, s := range got[g] {
			if s != want(g, i) {
				t.Fatalf("string %d of goroutine %d reads %.40q…, want %.40q…", i, g, s, want(g, i))
			}
		}
	}
}

// want is the i-th string goroutine g keeps: every 500th longer than a
// slab shares.
func want(g, i int) string {
	s := fmt.Sprintf("g%d-i%d/", g, i)
	if i%500 == 0 {
		return strings.Repeat(s, keptApart/len(s)+1)
	}
	return strings.Repeat(s, 1+i%7)
}
