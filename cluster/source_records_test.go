package cluster_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
)

// Paging newest first while another instance keeps shipping records of
// the same days, late and out of time order, returns every record that
// was there when the scan began exactly once.
func TestSourceRecordsCursorStableWhileShipping(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	start := time.Date(2026, 5, 3, 20, 0, 0, 0, time.UTC)
	a.record(t, 900, start, 3*time.Minute) // 45 hours: three days
	b.record(t, 300, start, 9*time.Minute)
	a.drain(t)
	b.drain(t)
	src := newSource(t, a.cluster)
	before := map[string]bool{}
	for _, id := range allRecordIDs(t, src) {
		before[id] = true
	}
	if len(before) != 1200 {
		t.Fatalf("%d records before, want 1200", len(before))
	}
	for _, order := range []metrics.Order{metrics.NewestFirst, metrics.OldestFirst} {
		seen := map[string]int{}
		q := metrics.RecordQuery{Order: order, Limit: 40}
		for page := 0; ; page++ {
			got, err := src.Records(ctxFor(t, 30*time.Second), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got.Records {
				seen[r.RequestID]++
			}
			if got.Next == "" {
				break
			}
			q.Cursor = got.Next
			// Between pages, both instances ship more of every day:
			// b's land before and after the cursor in the order.
			b.record(t, 7, start.Add(time.Duration(page)*17*time.Minute), 5*time.Hour)
			a.record(t, 3, start.Add(time.Duration(page)*23*time.Minute), 11*time.Hour)
			b.drain(t)
			a.drain(t)
		}
		for id := range before {
			if seen[id] != 1 {
				t.Fatalf("order %d: record %s seen %d times, want once", order, id, seen[id])
			}
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("order %d: record %s (shipped during the scan) seen %d times", order, id, n)
			}
		}
	}
}

func allRecordIDs(t *testing.T, src *cluster.Source) []string {
	t.Helper()
	var ids []string
	q := metrics.RecordQuery{Limit: metrics.MaxRecordLimit}
	for {
		page, err := src.Records(ctxFor(t, 30*time.Second), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			ids = append(ids, r.RequestID)
		}
		if page.Next == "" {
			return ids
		}
		q.Cursor = page.Next
	}
}

// A cursor the PostgreSQL reader did not issue for this order, a bbolt
// reader's cursor included, is a parameter error (400), and PostgreSQL
// down is keys.ErrUnavailable (503), for records and cells alike.
func TestSourceRefusesForeignCursorsAndReportsOutages(t *testing.T) {
	url := pg.Database(t)
	n := newShipNode(t, url, "a", nil)
	n.record(t, 30, time.Date(2026, 5, 3, 20, 0, 0, 0, time.UTC), time.Minute)
	// Before shipping: a shipped raw block may leave the data file.
	bboltPage, err := n.rd.Records(ctxFor(t, 30*time.Second), metrics.RecordQuery{Limit: 10})
	if err != nil || bboltPage.Next == "" {
		t.Fatalf("bbolt page: %v", err)
	}
	n.drain(t)
	src := newSource(t, n.cluster)
	page, err := src.Records(ctxFor(t, 30*time.Second), metrics.RecordQuery{Limit: 10})
	if err != nil || page.Next == "" {
		t.Fatalf("first page: %v, next %q", err, page.Next)
	}
	svc, err := analytics.New(analytics.Options{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]analytics.RecordQuery{
		"garbage":     {Cursor: "not a cursor!"},
		"short":       {Cursor: "UAA"},
		"other order": {Cursor: page.Next, Order: metrics.OldestFirst},
		"bbolt's":     {Cursor: bboltPage.Next},
	} {
		_, err := svc.Records(ctxFor(t, 30*time.Second), q)
		var pe *analytics.ParamError
		if !errors.As(err, &pe) {
			t.Errorf("%s cursor: %v, want a ParamError", name, err)
		}
	}

	startPostgres := pg.StopForTest(t)
	_, err = src.Records(ctxFor(t, 30*time.Second), metrics.RecordQuery{})
	if !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("records with PostgreSQL down: %v, want keys.ErrUnavailable", err)
	}
	err = src.ScanCells(ctxFor(t, 30*time.Second), metrics.CellQuery{Interval: metrics.Hourly, Dimension: metrics.DimTotal},
		func(string, time.Time, *metrics.Cell) error { return nil })
	if !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("cells with PostgreSQL down: %v, want keys.ErrUnavailable", err)
	}
	startPostgres()
}

// Records shipped before migration 009 get a place in the order: seq 0,
// their UTC day, and their rank in time order within instance and day.
func TestMigration009PlacesEarlierRecords(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	pool := newPool(t, pg.Database(t))
	sql := migrationsUpTo(t, 8)
	if _, err := cluster.MigrateFiles(ctx, pool, sql); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE apiwarden_records_20260503 PARTITION OF apiwarden_records FOR VALUES FROM ('2026-05-03T00:00:00Z') TO ('2026-05-04T00:00:00Z')`,
		`CREATE TABLE apiwarden_records_20260504 PARTITION OF apiwarden_records FOR VALUES FROM ('2026-05-04T00:00:00Z') TO ('2026-05-05T00:00:00Z')`,
		`INSERT INTO apiwarden_records SELECT inst, at, inst || at::text, 'GET', '/', '/', 200, 0, 0, 0, 0, '', '', '', NULL, '', '', 'none', '', ''
		 FROM unnest(ARRAY['a','a','a','b']) inst, unnest(ARRAY['2026-05-03T10:00:00Z','2026-05-03T09:00:00Z','2026-05-04T01:00:00Z']::timestamptz[]) at`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	sql[9] = mustRead(t, filepath.Join("migrations", "009_record_positions.up.sql"))
	if _, err := cluster.MigrateFiles(ctx, pool, sql); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT instance_id, to_char(at AT TIME ZONE 'UTC', 'DD HH24'), day, seq, idx FROM apiwarden_records
		WHERE instance_id = 'b' ORDER BY day, instance_id, seq, idx`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var inst, at string
		var day, seq, idx int64
		if err := rows.Scan(&inst, &at, &day, &seq, &idx); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %d/%d/%d", inst, at, day-20576, seq, idx))
	}
	want := []string{"b 03 09 0/0/1", "b 03 10 0/0/2", "b 04 01 1/0/1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("b's records after 009: %q, want %q", got, want)
	}
}

// migrationsUpTo is the SQL of the migrations 1 to last, by version, for
// MigrateFiles: a database as it was before a later migration.
func migrationsUpTo(t *testing.T, last int) map[int]string {
	t.Helper()
	sql := map[int]string{}
	for v := 1; v <= last; v++ {
		matches, _ := filepath.Glob(filepath.Join("migrations", fmt.Sprintf("%03d_*.up.sql", v)))
		if len(matches) != 1 {
			t.Fatalf("migration %03d: %v", v, matches)
		}
		sql[v] = mustRead(t, matches[0])
	}
	return sql
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newSource opens the analytics source over c, closed when t ends, with
// the shared data set's clock, so the first page newest first starts in
// the window of its last days.
func newSource(t testing.TB, c *cluster.Cluster) *cluster.Source {
	t.Helper()
	src, err := cluster.NewSource(c, cluster.SourceOptions{Now: func() time.Time { return sourceNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}
