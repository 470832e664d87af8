package cluster

import (
	"slices"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// recordColumns are the columns of apiwarden_records in the order
// recordRows gives them (cluster/migrations/007_records.up.sql; seq, day
// and idx from 009_record_positions.up.sql).
var recordColumns = []string{"instance_id", "at", "request_id", "method", "route", "path", "status",
	"latency_us", "upstream_latency_us", "request_bytes", "response_bytes", "key_id", "owner_id", "tier",
	"client_ip", "country", "user_agent", "error_category", "cache_status", "decision", "seq", "day", "idx"}

// recordRows is a pgx.CopyFromSource over the records of the batches
// whose sequence is in fresh.
type recordRows struct {
	instance string
	batches  []metrics.Batch
	fresh    []int64 // sorted
	erased   *erasureFilter
	b, i     int // the next record is batches[b].Records[i]
	row      []any
}

func newRecordRows(instance string, batches []metrics.Batch, fresh []int64, erased *erasureFilter) *recordRows {
	fresh = slices.Clone(fresh)
	slices.Sort(fresh)
	return &recordRows{instance: instance, batches: batches, fresh: fresh, erased: erased, i: -1, row: make([]any, len(recordColumns))}
}

// Next moves to the next record of a fresh batch that erased does not
// drop; a dropped record keeps its index, so the others keep theirs.
func (r *recordRows) Next() bool {
	for r.b < len(r.batches) {
		batch := &r.batches[r.b]
		if _, ok := slices.BinarySearch(r.fresh, int64(batch.Seq)); ok {
			for r.i+1 < len(batch.Records) {
				r.i++
				if !r.erased.dropsRecord(&batch.Records[r.i]) {
					return true
				}
			}
		}
		r.b, r.i = r.b+1, -1
	}
	return false
}

// Values returns the current record as a row of recordColumns.
func (r *recordRows) Values() ([]any, error) {
	rec := &r.batches[r.b].Records[r.i]
	// inet has no IPv6 zone, and a zone (fe80::1%eth0) names an interface
	// of the host that saw the request, meaningless on any other: it is
	// dropped here, on purpose, rather than left to the driver.
	var ip any
	if rec.ClientIP.IsValid() {
		ip = rec.ClientIP.WithZone("")
	}
	row := r.row
	row[0], row[1], row[2], row[3], row[4], row[5] = r.instance, rec.Time, rec.RequestID, rec.Method, rec.Route, rec.Path
	row[6], row[7], row[8] = int32(rec.Status), rec.Latency.Microseconds(), rec.UpstreamLatency.Microseconds()
	row[9], row[10], row[11], row[12], row[13] = rec.RequestBytes, rec.ResponseBytes, rec.KeyID, rec.OwnerID, rec.Tier
	row[14], row[15], row[16] = ip, rec.Country, rec.UserAgent
	row[17], row[18], row[19] = rec.ErrorCategory.String(), rec.CacheStatus.String(), rec.Decision.String()
	// Where the record stands in the data file: its block's sequence and
	// UTC day, and its index in the block, as the bbolt reader orders it.
	row[20], row[21], row[22] = int64(r.batches[r.b].Seq), recordDay(rec.Time), int32(r.i)
	return row, nil
}

// recordDay is the UTC day of t as days since the Unix epoch: the number
// of the day bucket a record is stored in (metrics.Daily).
func recordDay(t time.Time) int32 {
	return int32(metrics.Daily.Truncate(t).Unix() / (24 * 60 * 60))
}

// Err reports nothing: the records are decoded already.
func (r *recordRows) Err() error { return nil }
