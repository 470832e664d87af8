package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// retentionNow is the clock of the retention tests: with 10 raw, 5 hourly
// and 7 daily days kept, the first day kept is 2026-03-10 for raw records
// and shipped batches, 2026-03-15 for hourly cells and 2026-03-13 for
// daily cells.
var (
	retentionNow  = time.Date(2026, 3, 20, 10, 30, 0, 0, time.UTC)
	retentionOpts = cluster.RetentionOptions{RawDays: 10, HourlyDays: 5, DailyDays: 7,
		Poll: 20 * time.Millisecond, Now: func() time.Time { return retentionNow }}
)

// partitions lists the partitions of apiwarden_records.
func partitions(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(ctxFor(t, 30*time.Second), `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'apiwarden_records'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func countRows(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctxFor(t, 30*time.Second), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Cut-offs under retentionOpts at retentionNow.
var (
	rawCut    = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	hourlyCut = time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	dailyCut  = time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC)
)

// insertCell writes one cell row of instance "a".
func insertCell(t testing.TB, pool *pgxpool.Pool, iv metrics.Interval, start time.Time) {
	t.Helper()
	c := metrics.Cell{Count: 3, Status2xx: 3}
	b, err := c.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctxFor(t, 30*time.Second), `INSERT INTO apiwarden_cells (interval, dim, value, start, instance_id, count, cell)
		VALUES ($1, 1, '', $2, 'a', 3, $3)`, int16(iv), start, b); err != nil {
		t.Fatal(err)
	}
}

// seeded is what the shipper wrote on each side of the cut-offs: the
// cells of each interval before its cut-off and from it on.
type seeded struct {
	hourlyBefore, hourlyKept, dailyBefore, dailyKept int
}

// seedAtBoundaries ships, through n's shipper, a record on each side of
// every cut-off (a block each), so the records, batch rows and rollup
// cells retention reads are the ones the shipper writes, and dates the
// first batch row just before the raw cut-off and the others at it.
func seedAtBoundaries(t testing.TB, n *shipNode) seeded {
	t.Helper()
	for _, at := range []time.Time{rawCut.Add(-time.Microsecond), rawCut, time.Date(2026, 3, 12, 12, 0, 0, 0, time.UTC),
		dailyCut, hourlyCut.Add(-30 * time.Minute), hourlyCut} {
		n.record(t, 1, at, 0)
	}
	n.drain(t)
	pool := n.cluster.Pool()
	if _, err := pool.Exec(ctxFor(t, 30*time.Second), `UPDATE apiwarden_shipped_batches
		SET shipped_at = CASE WHEN seq = (SELECT min(seq) FROM apiwarden_shipped_batches) THEN $1::timestamptz ELSE $2 END`,
		rawCut.Add(-time.Microsecond), rawCut); err != nil {
		t.Fatal(err)
	}
	cells := func(where string, cut time.Time) int {
		var n int
		if err := pool.QueryRow(ctxFor(t, 30*time.Second), `SELECT count(*) FROM apiwarden_cells WHERE `+where, cut).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s := seeded{
		hourlyBefore: cells("interval = 1 AND start < $1", hourlyCut), hourlyKept: cells("interval = 1 AND start >= $1", hourlyCut),
		dailyBefore: cells("interval = 2 AND start < $1", dailyCut), dailyKept: cells("interval = 2 AND start >= $1", dailyCut),
	}
	// The shipper wrote cells right at each side of both cut-offs.
	if cells("interval = 1 AND start = $1", hourlyCut.Add(-time.Hour)) == 0 || cells("interval = 1 AND start = $1", hourlyCut) == 0 ||
		cells("interval = 2 AND start = $1", dailyCut.AddDate(0, 0, -1)) == 0 || cells("interval = 2 AND start = $1", dailyCut) == 0 {
		t.Fatalf("the shipper wrote no cells on one side of a cut-off: %+v", s)
	}
	return s
}

// wantAfterRetention checks that exactly what lies before each cut-off
// is gone.
func wantAfterRetention(t testing.TB, pool *pgxpool.Pool, s seeded) {
	t.Helper()
	want := []string{"apiwarden_records_20260310", "apiwarden_records_20260312", "apiwarden_records_20260313",
		"apiwarden_records_20260314", "apiwarden_records_20260315", "apiwarden_records_20260316"}
	if got := partitions(t, pool); !slices.Equal(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
	if got := countRows(t, pool, `SELECT count(*) FROM apiwarden_records`); got != 5 ||
		countRows(t, pool, `SELECT count(*) FROM apiwarden_records WHERE at = '2026-03-10T00:00:00Z'`) != 1 {
		t.Fatalf("%d records left, want the 5 from the cut-off on", got)
	}
	if got := countRows(t, pool, `SELECT count(*) FROM apiwarden_shipped_batches`); got != 5 ||
		countRows(t, pool, `SELECT count(*) FROM apiwarden_shipped_batches WHERE shipped_at < '2026-03-10T00:00:00Z'`) != 0 {
		t.Fatalf("%d shipped batch rows left, want the 5 shipped at the cut-off", got)
	}
	hourly := countRows(t, pool, `SELECT count(*) FROM apiwarden_cells WHERE interval = 1`)
	daily := countRows(t, pool, `SELECT count(*) FROM apiwarden_cells WHERE interval = 2`)
	if hourly != s.hourlyKept || daily != s.dailyKept ||
		countRows(t, pool, `SELECT count(*) FROM apiwarden_cells WHERE (interval = 1 AND start < '2026-03-15T00:00:00Z')
			OR (interval = 2 AND start < '2026-03-13T00:00:00Z')`) != 0 {
		t.Fatalf("cells left: %d hourly, %d daily; want the %d and %d from the cut-offs on", hourly, daily, s.hourlyKept, s.dailyKept)
	}
}

// One pass deletes exactly what lies before each cut-off, and a second
// finds nothing; a shipper whose partition was dropped under it creates
// it again.
func TestRetentionDropsExactlyAtTheBoundary(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "a", nil)
	s := seedAtBoundaries(t, n)
	r := cluster.NewRetention(n.cluster, nil, retentionOpts)
	res, err := r.Apply(ctxFor(t, time.Minute))
	want := cluster.RetentionResult{Partitions: []string{"apiwarden_records_20260309"},
		HourlyCells: int64(s.hourlyBefore), DailyCells: int64(s.dailyBefore), Batches: 1}
	if err != nil || !slices.Equal(res.Partitions, want.Partitions) || res.HourlyCells != want.HourlyCells ||
		res.DailyCells != want.DailyCells || res.Batches != 1 {
		t.Fatalf("pass: %+v, %v; want %+v", res, err, want)
	}
	wantAfterRetention(t, n.cluster.Pool(), s)
	deleted := uint64(1 + s.hourlyBefore + s.dailyBefore)
	if r.DroppedPartitions() != 1 || r.DeletedRows() != deleted {
		t.Fatalf("counters: %d partitions, %d rows; want 1 and %d", r.DroppedPartitions(), r.DeletedRows(), deleted)
	}
	if res, err := r.Apply(ctxFor(t, time.Minute)); err != nil || len(res.Partitions)+int(res.HourlyCells+res.DailyCells+res.Batches) != 0 {
		t.Fatalf("second pass: %+v, %v; want nothing", res, err)
	}

	// A late record of the dropped day: the shipper's first try may fail
	// on the partition it remembered, the next creates it again.
	n.record(t, 1, time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC), time.Millisecond)
	within(t, 30*time.Second, "the late record shipped", func() bool {
		got, err := n.ship.ShipOnce(ctxFor(t, time.Minute))
		return err == nil && got == 0
	})
	if got := countRows(t, n.cluster.Pool(), `SELECT count(*) FROM apiwarden_records_20260309`); got != 1 {
		t.Fatalf("%d rows in the partition made again, want 1", got)
	}
}

// retentionCandidate is an instance standing for the retention duty and
// running its Retention.
type retentionCandidate struct {
	leader *cluster.Leader
	ret    *cluster.Retention
	stop   func()
}

func newRetentionCandidate(t *testing.T, url, id string) *retentionCandidate {
	t.Helper()
	c, err := cluster.Open(ctxFor(t, 30*time.Second), cluster.Options{URL: url, InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cluster.NewLeader(c, cluster.LeaderOptions{Name: "retention", Holder: id, TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Passes a few times a second, not hourly: the duty may move (on
	// stop, or a lease lapsing under load) before a test writes the data
	// it expects the next holder to delete, and that holder's first pass
	// must not be its only one.
	opts := retentionOpts
	opts.Interval = 100 * time.Millisecond
	r := cluster.NewRetention(c, l, opts)
	leaderDone, retDone := make(chan error, 1), make(chan error, 1)
	go func() { leaderDone <- l.Run(context.Background()) }()
	go func() { retDone <- r.Run(context.Background()) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		r.Stop()
		l.Stop()
		<-retDone
		<-leaderDone
	}
	t.Cleanup(func() { stop(); c.Close() })
	return &retentionCandidate{leader: l, ret: r, stop: stop}
}

// Of two candidates only the leader deletes; when it stops, the other
// takes the duty and deletes what expired since.
func TestRetentionRunsOnTheLeaderOnly(t *testing.T) {
	url := pg.Database(t)
	n := newShipNode(t, url, "a", nil)
	s := seedAtBoundaries(t, n)
	deleted := uint64(1 + s.hourlyBefore + s.dailyBefore)
	pool := n.cluster.Pool()
	a, b := newRetentionCandidate(t, url, "pod-a"), newRetentionCandidate(t, url, "pod-b")
	within(t, 30*time.Second, "the expired data deleted and counted", func() bool {
		return a.ret.DeletedRows()+b.ret.DeletedRows() == deleted
	})
	wantAfterRetention(t, pool, s)
	lead, follow := a, b
	if b.ret.DeletedRows() > 0 {
		lead, follow = b, a
	}
	if lead.ret.DroppedPartitions() != 1 || lead.ret.DeletedRows() != deleted {
		t.Fatalf("the leader's counters: %d partitions, %d rows; want 1 and %d", lead.ret.DroppedPartitions(), lead.ret.DeletedRows(), deleted)
	}
	if follow.ret.DroppedPartitions() != 0 || follow.ret.DeletedRows() != 0 {
		t.Fatalf("the follower deleted: %d partitions, %d rows", follow.ret.DroppedPartitions(), follow.ret.DeletedRows())
	}

	lead.stop()
	if _, err := pool.Exec(ctxFor(t, 30*time.Second), `CREATE TABLE apiwarden_records_20260301 PARTITION OF apiwarden_records
		FOR VALUES FROM ('2026-03-01T00:00:00Z') TO ('2026-03-02T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	insertCell(t, pool, metrics.Hourly, time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC))
	within(t, 30*time.Second, "the new leader deleted what expired", func() bool {
		return follow.ret.DeletedRows() == 1
	})
	if got := partitions(t, pool); len(got) != 6 || countRows(t, pool, `SELECT count(*) FROM apiwarden_cells`) != s.hourlyKept+s.dailyKept {
		t.Fatalf("after the new leader's pass: partitions %v; want the expired partition and cell gone", got)
	}
	if !follow.leader.Leading() || follow.ret.DroppedPartitions() != 1 || follow.ret.DeletedRows() != 1 {
		t.Fatalf("the new leader's counters: %d partitions, %d rows; want 1 and 1", follow.ret.DroppedPartitions(), follow.ret.DeletedRows())
	}
}

// Retention deletes an erasure once nothing it covers can still ship: a
// raw-only erasure from before the raw cut-off, one that took the rollups
// from before every cut-off too (a lagging instance may still ship a
// daily cell of the erased key while daily cells are kept). Kept for ever
// when what it covers is.
func TestRetentionPrunesErasures(t *testing.T) {
	c, err := cluster.Open(ctxFor(t, 30*time.Second), cluster.Options{URL: pg.Database(t), InstanceID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	pool := c.Pool()
	longDaily := retentionOpts
	longDaily.DailyDays = 20 // cells of 2026-02-28 on are kept
	longCut := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
	erasures := map[string]struct {
		at      time.Time
		rollups bool
	}{
		"raw, before the cut-off":         {rawCut.Add(-time.Microsecond), false},
		"raw, at the cut-off":             {rawCut, false},
		"rollups, before the raw cut-off": {rawCut.Add(-time.Microsecond), true},
		"rollups, before every cut-off":   {longCut.Add(-time.Microsecond), true},
		"rollups, at the daily cut-off":   {longCut, true},
	}
	for name, e := range erasures {
		if _, err := pool.Exec(ctxFor(t, 30*time.Second), `INSERT INTO apiwarden_erasures (key_ids, owner_id, rollups, requested_by, instance_id, erased_at)
			VALUES ('{k_1}', '', $1, $2, 'a', $3)`, e.rollups, name, e.at); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		rows, err := pool.Query(ctxFor(t, 30*time.Second), `SELECT requested_by FROM apiwarden_erasures ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	keepDaily := longDaily
	keepDaily.DailyDays = 0
	for _, pass := range []struct {
		name string
		opts cluster.RetentionOptions
		gone int64
		left []string
	}{
		{"daily cells kept for ever", keepDaily, 1, []string{"raw, at the cut-off", "rollups, at the daily cut-off", "rollups, before every cut-off", "rollups, before the raw cut-off"}},
		{"daily cells kept 20 days", longDaily, 1, []string{"raw, at the cut-off", "rollups, at the daily cut-off", "rollups, before the raw cut-off"}},
		{"again", longDaily, 0, []string{"raw, at the cut-off", "rollups, at the daily cut-off", "rollups, before the raw cut-off"}},
	} {
		r := cluster.NewRetention(c, nil, pass.opts)
		res, err := r.Apply(ctxFor(t, time.Minute))
		if err != nil || res.Erasures != pass.gone || r.DeletedRows() != uint64(pass.gone) {
			t.Fatalf("%s: %+v, %v, %d rows deleted; want %d erasures", pass.name, res, err, r.DeletedRows(), pass.gone)
		}
		if got := left(); !slices.Equal(got, pass.left) {
			t.Fatalf("%s: erasures left %q, want %q", pass.name, got, pass.left)
		}
	}
}
