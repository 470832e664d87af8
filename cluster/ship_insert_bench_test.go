package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchmarkShipInsertMethods inserts the same 100,000 rows of
// apiwarden_records (one day's partition) with CopyFrom, as the shipper
// does, and with INSERT ... SELECT FROM unnest(arrays) in statements of
// 5,000 rows, the fastest multi-row INSERT form: the choice behind
// cluster/ship.go, in records/s.
func BenchmarkShipInsertMethods(b *testing.B) {
	const n, chunk = 100_000, 5000
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cols := []string{"instance_id", "at", "request_id", "method", "route", "path", "status",
		"latency_us", "upstream_latency_us", "request_bytes", "response_bytes", "key_id", "owner_id", "tier",
		"client_ip", "country", "user_agent", "error_category", "cache_status", "decision"}
	row := func(i int) []any {
		return []any{"bench", day.Add(time.Duration(i) * 800 * time.Microsecond), fmt.Sprintf("req-%d", i), "GET",
			"/api/forms/*", fmt.Sprintf("/api/forms/%d", i), int32(200), int64(i % 5000), int64(i % 4000), int64(i % 100),
			int64(2048), fmt.Sprintf("key_%d", i%1000), fmt.Sprintf("org_%d", i%300), "free", fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255),
			"DE", "python-requests/2.32.3", "none", "none", "valid"}
	}
	for _, method := range []string{"copy", "unnest"} {
		b.Run(method, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				node := newShipNode(b, pg.Database(b), "bench", nil)
				pool := node.cluster.Pool()
				ctx := ctxFor(b, 5*time.Minute)
				if _, err := pool.Exec(ctx, `CREATE TABLE apiwarden_records_20260301 PARTITION OF apiwarden_records
					FOR VALUES FROM ('2026-03-01T00:00:00Z') TO ('2026-03-02T00:00:00Z')`); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				started := time.Now()
				for lo := 0; lo < n; lo += chunk {
					var err error
					if method == "copy" {
						_, err = pool.CopyFrom(ctx, pgx.Identifier{"apiwarden_records"}, cols,
							pgx.CopyFromSlice(chunk, func(i int) ([]any, error) { return row(lo + i), nil }))
					} else {
						arrays := make([][]any, len(cols))
						for i := range chunk {
							for c, v := range row(lo + i) {
								arrays[c] = append(arrays[c], v)
							}
						}
						args := make([]any, len(cols))
						for c := range cols {
							args[c] = arrays[c]
						}
						_, err = pool.Exec(ctx, `INSERT INTO apiwarden_records SELECT * FROM unnest($1::text[], $2::timestamptz[],
							$3::text[], $4::text[], $5::text[], $6::text[], $7::integer[], $8::bigint[], $9::bigint[], $10::bigint[],
							$11::bigint[], $12::text[], $13::text[], $14::text[], $15::inet[], $16::text[], $17::text[], $18::text[],
							$19::text[], $20::text[])`, args...)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				took := time.Since(started)
				b.StopTimer()
				b.ReportMetric(float64(n)/took.Seconds(), "records/s")
				b.StartTimer()
			}
		})
	}
}
