package edgetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// Records keeps what a gateway records (its RequestRecorder), for a test
// to read. Safe for concurrent use.
type Records struct {
	mu   sync.Mutex
	recs []metrics.Record
}

// Record keeps a copy of rec.
func (r *Records) Record(rec *metrics.Record) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, *rec)
	return true
}

// All returns the records kept so far.
func (r *Records) All() []metrics.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]metrics.Record(nil), r.recs...)
}

// Last polls until n records are kept and returns the last.
func (r *Records) Last(t testing.TB, n int) metrics.Record {
	t.Helper()
	var rec metrics.Record
	Poll(t, 10*time.Second, fmt.Sprintf("%d records", n), func() bool {
		all := r.All()
		if len(all) < n {
			return false
		}
		rec = all[len(all)-1]
		return true
	})
	return rec
}
