package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// The PostgreSQL analytics fixture: 90 days of traffic from three
// instances, 10 million raw records from 1,000 keys (Zipf) over 50
// routes, as the shipper lays them out (8,192-record blocks per instance
// and day), and the rollup cells each instance would have shipped for
// them (one row per instance and cell, apiwarden_cells), loaded with
// COPY. It is built once per test binary, only when a benchmark asks for
// it, so `go test ./...` never builds it; APIWARDEN_BENCH_RECORDS=1000000
// makes a smaller one. The fixture also holds benchRareKey: 60 records
// spread over the 90 days.
var pgBench struct {
	once    sync.Once
	svc     *analytics.Service
	pool    *pgxpool.Pool
	records int
	err     error
}

const (
	pgBenchRareKey     = "key_rare"
	pgBenchRareRecords = 60
	pgBenchInstances   = 3
	pgBenchBlock       = 8192
)

var pgBenchEnd = time.Date(2026, 11, 27, 15, 30, 0, 0, time.UTC)

func pgBenchService(b *testing.B) *analytics.Service {
	b.Helper()
	pgBench.once.Do(func() {
		pgBench.records = 10_000_000
		if v := os.Getenv("APIWARDEN_BENCH_RECORDS"); v != "" {
			if pgBench.records, pgBench.err = strconv.Atoi(v); pgBench.err != nil {
				return
			}
		}
		url := pg.Database(b)
		ctx := context.Background()
		c, err := cluster.Open(ctx, cluster.Options{URL: url, InstanceID: "bench", Timeout: time.Minute})
		if err != nil {
			pgBench.err = err
			return
		}
		b.Cleanup(c.Close)
		start := time.Now()
		if pgBench.err = fillPostgres(ctx, c.Pool(), pgBench.records); pgBench.err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "PostgreSQL analytics fixture: %d records in %s\n", pgBench.records, time.Since(start).Round(time.Second))
		// Fold the closed hours and days as the leader would have by
		// pgBenchEnd (cluster/fold.go), then let the visibility map catch
		// up as autovacuum would, for index-only counts.
		start = time.Now()
		folded, err := cluster.NewFold(c, nil, cluster.FoldOptions{Now: func() time.Time { return pgBenchEnd }}).Apply(ctx)
		if err == nil {
			_, err = c.Pool().Exec(ctx, "VACUUM ANALYZE apiwarden_cells")
		}
		if pgBench.err = err; err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "folded %d cells in %s\n", folded, time.Since(start).Round(time.Second))
		reportSizes(ctx, c.Pool(), pgBench.records)
		pgBench.pool = c.Pool()
		src, err := cluster.NewSource(c, cluster.SourceOptions{Now: func() time.Time { return pgBenchEnd }})
		if err != nil {
			pgBench.err = err
			return
		}
		b.Cleanup(src.Close)
		pgBench.svc, pgBench.err = analytics.New(analytics.Options{
			Source:    src,
			Retention: analytics.Retention{RawDays: 90, HourlyDays: 400},
			Now:       func() time.Time { return pgBenchEnd },
		})
	})
	if pgBench.err != nil {
		b.Fatalf("bench fixture: %v", pgBench.err)
	}
	return pgBench.svc
}

// benchGen makes the fixture's records in time order.
type benchGen struct {
	rng       *rand.Rand
	zipf      *rand.Zipf
	keys      []string
	routes    []string
	rareEvery int
}

func newBenchGen(records int) *benchGen {
	rng := rand.New(rand.NewPCG(90, 10))
	g := &benchGen{rng: rng, zipf: rand.NewZipf(rng, 1.1, 1, 999), rareEvery: max(records/pgBenchRareRecords, 1)}
	for i := range 1000 {
		g.keys = append(g.keys, fmt.Sprintf("key_%06d", i))
	}
	for i := range 50 {
		g.routes = append(g.routes, fmt.Sprintf("/api/r%02d/*", i))
	}
	return g
}

func (g *benchGen) record(i int, at time.Time) metrics.Record {
	k := int(g.zipf.Uint64())
	key, owner, tier := g.keys[k], fmt.Sprintf("org_%03d", k%200), []string{"free", "basic", "pro", "enterprise"}[k%4]
	if i%g.rareEvery == g.rareEvery/2 {
		key, owner, tier = pgBenchRareKey, "org_rare", "basic"
	}
	status := 200
	switch r := g.rng.IntN(100); {
	case r < 3:
		status = 500
	case r < 8:
		status = 429
	case r < 15:
		status = 404
	}
	return metrics.Record{
		Time: at, RequestID: "r" + strconv.Itoa(i), Method: "GET", Route: g.routes[g.rng.IntN(len(g.routes))],
		Path: "/api/x/" + strconv.Itoa(g.rng.IntN(100000)), Status: status,
		Latency: time.Duration(g.rng.IntN(300_000)) * time.Microsecond, UpstreamLatency: time.Duration(g.rng.IntN(200_000)) * time.Microsecond,
		RequestBytes: int64(g.rng.IntN(2000)), ResponseBytes: int64(g.rng.IntN(20000)), KeyID: key, OwnerID: owner, Tier: tier,
		ClientIP: netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), byte(i)}), Country: "DE", UserAgent: "bench/1",
		ErrorCategory: metrics.CategorizeError(status, 0),
	}
}

// cellKey names one cell of one instance.
type cellKey struct {
	interval metrics.Interval
	dim      metrics.Dimension
	value    string
	start    time.Time
	instance int
}

// fillPostgres loads records records over the 90 days before pgBenchEnd,
// a UTC day at a time: the day's partition, its records and the cells of
// its hours and of the day.
func fillPostgres(ctx context.Context, pool *pgxpool.Pool, records int) error {
	g := newBenchGen(records)
	from := pgBenchEnd.AddDate(0, 0, -90)
	step := pgBenchEnd.Sub(from) / time.Duration(records)
	var seq [pgBenchInstances]int64
	i := 0
	for day := metrics.Daily.Truncate(from); day.Before(pgBenchEnd); day = day.AddDate(0, 0, 1) {
		if _, err := pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE apiwarden_records_%s PARTITION OF apiwarden_records FOR VALUES FROM ('%s') TO ('%s')`,
			day.Format("20060102"), day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339))); err != nil {
			return err
		}
		var rows [][]any
		cells := map[cellKey]*metrics.Cell{}
		var inBlock [pgBenchInstances]int
		for ; i < records; i++ {
			at := from.Add(time.Duration(i) * step).Truncate(time.Microsecond)
			if !metrics.Daily.Truncate(at).Equal(day) {
				break
			}
			rec := g.record(i, at)
			inst := i % pgBenchInstances
			if inBlock[inst] == 0 {
				seq[inst]++
			}
			rows = append(rows, []any{fmt.Sprintf("node-%d", inst), rec.Time, rec.RequestID, rec.Method, rec.Route, rec.Path,
				int32(rec.Status), rec.Latency.Microseconds(), rec.UpstreamLatency.Microseconds(), rec.RequestBytes, rec.ResponseBytes,
				rec.KeyID, rec.OwnerID, rec.Tier, rec.ClientIP, rec.Country, rec.UserAgent, rec.ErrorCategory.String(), "", "",
				seq[inst], int32(day.Unix() / 86400), int32(inBlock[inst])})
			inBlock[inst] = (inBlock[inst] + 1) % pgBenchBlock
			addCells(cells, &rec, inst)
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"apiwarden_records"}, benchRecordColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		if err := copyCells(ctx, pool, cells); err != nil {
			return err
		}
	}
	_, err := pool.Exec(ctx, "VACUUM ANALYZE")
	return err
}

var benchRecordColumns = []string{"instance_id", "at", "request_id", "method", "route", "path", "status",
	"latency_us", "upstream_latency_us", "request_bytes", "response_bytes", "key_id", "owner_id", "tier",
	"client_ip", "country", "user_agent", "error_category", "cache_status", "decision", "seq", "day", "idx"}

// addCells counts rec in every cell it belongs to, as a Recorder does.
func addCells(cells map[cellKey]*metrics.Cell, rec *metrics.Record, inst int) {
	class := ""
	if c := rec.StatusClass(); c > 0 {
		class = strconv.Itoa(c) + "xx"
	}
	for _, iv := range []metrics.Interval{metrics.Hourly, metrics.Daily} {
		start := iv.Truncate(rec.Time)
		for _, dv := range []struct {
			dim   metrics.Dimension
			value string
		}{{metrics.DimTotal, ""}, {metrics.DimRoute, rec.Route}, {metrics.DimKey, rec.KeyID},
			{metrics.DimOwner, rec.OwnerID}, {metrics.DimTier, rec.Tier}, {metrics.DimStatusClass, class}} {
			if dv.value == "" && dv.dim != metrics.DimTotal {
				continue
			}
			k := cellKey{iv, dv.dim, dv.value, start, inst}
			c := cells[k]
			if c == nil {
				c = new(metrics.Cell)
				cells[k] = c
			}
			c.Add(rec)
		}
	}
}

func copyCells(ctx context.Context, pool *pgxpool.Pool, cells map[cellKey]*metrics.Cell) error {
	rows := make([][]any, 0, len(cells))
	for k, c := range cells {
		b, _ := c.AppendBinary(nil)
		rows = append(rows, []any{int16(k.interval), int16(k.dim), k.value, k.start, fmt.Sprintf("node-%d", k.instance), int64(c.Count), b})
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"apiwarden_cells"},
		[]string{"interval", "dim", "value", "start", "instance_id", "count", "cell"}, pgx.CopyFromRows(rows))
	return err
}

// reportSizes prints the bytes a record takes in apiwarden_records and in
// each of its indexes (summed over the partitions), and the cells'.
func reportSizes(ctx context.Context, pool *pgxpool.Pool, records int) {
	for _, rel := range []string{"apiwarden_records", "apiwarden_records_position", "apiwarden_records_key_position"} {
		var n int64
		size := "pg_relation_size(relid)" // an index's partitions
		if rel == "apiwarden_records" {
			size = "pg_total_relation_size(relid) - pg_indexes_size(relid)" // heap and TOAST
		}
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(`+size+`), 0)::bigint FROM pg_partition_tree($1::regclass) WHERE isleaf`,
			rel).Scan(&n); err != nil {
			fmt.Fprintln(os.Stderr, "sizes:", err)
			return
		}
		fmt.Fprintf(os.Stderr, "%s: %d MB, %.1f B a record\n", rel, n>>20, float64(n)/float64(records))
	}
	var cellRows, cellTable, cellPK, cellRange int64
	_ = pool.QueryRow(ctx, `SELECT count(*), pg_table_size('apiwarden_cells'), pg_relation_size('apiwarden_cells_pkey'),
		pg_relation_size('apiwarden_cells_visible') FROM apiwarden_cells`).Scan(&cellRows, &cellTable, &cellPK, &cellRange)
	fmt.Fprintf(os.Stderr, "apiwarden_cells: %d rows, table %d MB, primary key %d MB, visible index %d MB (%.1f B a record)\n",
		cellRows, cellTable>>20, cellPK>>20, cellRange>>20, float64(cellRange)/float64(records))
}

// BenchmarkSourceQueries runs the analytics benchmark's questions
// (analytics/bench_test.go) against PostgreSQL: goals < 50 ms for
// summary, series and top, < 100 ms for a page of a rare key.
func BenchmarkSourceQueries(b *testing.B) {
	svc := pgBenchService(b)
	ctx := context.Background()
	run := func(name string, fn func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("summary_month", func() error {
		s, err := svc.Summary(ctx, analytics.SummaryQuery{Period: analytics.PeriodMonth})
		if err == nil && s.Current.Requests == 0 {
			err = fmt.Errorf("empty summary")
		}
		return err
	})
	run("series_daily_90d", func() error {
		s, err := svc.Series(ctx, analytics.SeriesQuery{From: pgBenchEnd.AddDate(0, 0, -90), Interval: analytics.IntervalDay})
		if err == nil && len(s.Series[0].Points) != 91 {
			err = fmt.Errorf("%d points", len(s.Series[0].Points))
		}
		return err
	})
	run("series_hourly_7d_by_tier", func() error {
		s, err := svc.Series(ctx, analytics.SeriesQuery{From: pgBenchEnd.AddDate(0, 0, -7), Interval: analytics.IntervalHour, GroupBy: analytics.GroupTier})
		if err == nil && len(s.Series) != 4 {
			err = fmt.Errorf("%d series", len(s.Series))
		}
		return err
	})
	run("top20_routes_30d", func() error {
		t, err := svc.Top(ctx, analytics.TopQuery{By: analytics.GroupRoute, From: pgBenchEnd.AddDate(0, 0, -30), To: pgBenchEnd, Limit: 20})
		if err == nil && len(t.Items) != 20 {
			err = fmt.Errorf("%d items", len(t.Items))
		}
		return err
	})
	run("top20_keys_30d", func() error {
		_, err := svc.Top(ctx, analytics.TopQuery{By: analytics.GroupKey, From: pgBenchEnd.AddDate(0, 0, -30), To: pgBenchEnd, Limit: 20})
		return err
	})
	run("records_page_100", func() error {
		p, err := svc.Records(ctx, analytics.RecordQuery{Limit: 100})
		if err == nil && len(p.Records) != 100 {
			err = fmt.Errorf("%d records", len(p.Records))
		}
		return err
	})
	run("records_page_100_one_key", func() error {
		_, err := svc.Records(ctx, analytics.RecordQuery{Limit: 100, KeyID: "key_000500"})
		return err
	})
	run("records_page_100_rare_key", func() error {
		p, err := svc.Records(ctx, analytics.RecordQuery{Limit: 100, KeyID: pgBenchRareKey})
		if err == nil && pgBench.records >= pgBenchRareRecords && len(p.Records) != pgBenchRareRecords {
			err = fmt.Errorf("%d records of %s", len(p.Records), pgBenchRareKey)
		}
		return err
	})
	run("billing_month_by_owner", func() error {
		_, err := svc.Billing(ctx, analytics.BillingQuery{Month: "2026-10", GroupBy: analytics.GroupOwner})
		return err
	})
}
