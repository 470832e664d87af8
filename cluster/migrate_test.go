package cluster_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
)

// A fresh database gets every migration, recorded in the version table,
// and a second run changes nothing.
func TestMigrateFreshDatabase(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	pool := newPool(t, pg.Database(t))
	applied, err := cluster.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.SchemaVersions()
	if len(want) == 0 || !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	var tables int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename IN ('apiwarden_keys', 'apiwarden_key_events', 'apiwarden_key_changes')").Scan(&tables); err != nil || tables != 3 {
		t.Fatalf("key tables: %d (%v), want 3", tables, err)
	}
	again, err := cluster.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run applied %v (%v), want nothing", again, err)
	}
}

// Instances that start together migrate once: the advisory lock queues
// them and the later ones find the schema current. Without the lock they
// would race on CREATE TABLE and fail.
func TestMigrateConcurrentlyMigratesOnce(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	url := pg.Database(t)
	const instances = 8
	results := make([][]int, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		pool := newPool(t, url) // a pool each, as separate instances have
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = cluster.Migrate(ctx, pool)
		}()
	}
	close(start)
	wg.Wait()
	migrated := 0
	for i := range instances {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if len(results[i]) > 0 {
			migrated++
		}
	}
	if migrated != 1 {
		t.Fatalf("%d instances applied migrations, want exactly 1", migrated)
	}
	var rows int
	if err := newPool(t, url).QueryRow(ctx, "SELECT count(*) FROM apiwarden_migration").Scan(&rows); err != nil || rows != len(cluster.SchemaVersions()) {
		t.Fatalf("version table has %d rows (%v), want %d", rows, err, len(cluster.SchemaVersions()))
	}
}

// A database a newer binary migrated is refused with ErrSchemaNewer, by
// Migrate and by Open, and left as it was.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	url := pg.Database(t)
	pool := newPool(t, url)
	if _, err := cluster.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	future := cluster.SchemaVersion() + 1
	if _, err := pool.Exec(ctx, "INSERT INTO apiwarden_migration (version, name) VALUES ($1, 'from_the_future')", future); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Migrate(ctx, pool); !errors.Is(err, cluster.ErrSchemaNewer) {
		t.Fatalf("Migrate: %v, want ErrSchemaNewer", err)
	}
	if c, err := cluster.Open(ctx, cluster.Options{URL: url}); !errors.Is(err, cluster.ErrSchemaNewer) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Open: %v, want ErrSchemaNewer", err)
	}
	var top int
	if err := pool.QueryRow(ctx, "SELECT max(version) FROM apiwarden_migration").Scan(&top); err != nil || top != future {
		t.Fatalf("version now %d (%v), want %d untouched", top, err, future)
	}
}

// A second instance with another key secret is refused: none of the
// cluster's keys would verify on it.
func TestOpenRefusesAnotherKeySecret(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	url := pg.Database(t)
	first, err := cluster.Open(ctx, cluster.Options{URL: url, KeySecretCheck: "aaaa"})
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	same, err := cluster.Open(ctx, cluster.Options{URL: url, KeySecretCheck: "aaaa"})
	if err != nil {
		t.Fatalf("same secret refused: %v", err)
	}
	same.Close()
	if c, err := cluster.Open(ctx, cluster.Options{URL: url, KeySecretCheck: "bbbb"}); !errors.Is(err, cluster.ErrKeySecretMismatch) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("another secret: %v, want ErrKeySecretMismatch", err)
	}
}

// Branches merged out of order leave a gap for a while: a database
// migrated with versions 1 and 3 gets 2 when a binary that has it starts,
// and one that lacks 3 is refused.
func TestMigrateFillsGaps(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	pool := newPool(t, pg.Database(t))
	one, two, three := "CREATE TABLE t1 (x int)", "CREATE TABLE t2 (x int)", "CREATE TABLE t3 (x int)"
	if applied, err := cluster.MigrateFiles(ctx, pool, map[int]string{1: one, 3: three}); err != nil || !slices.Equal(applied, []int{1, 3}) {
		t.Fatalf("with a gap: applied %v (%v), want [1 3]", applied, err)
	}
	if applied, err := cluster.MigrateFiles(ctx, pool, map[int]string{1: one, 2: two, 3: three}); err != nil || !slices.Equal(applied, []int{2}) {
		t.Fatalf("gap filled: applied %v (%v), want [2]", applied, err)
	}
	if _, err := cluster.MigrateFiles(ctx, pool, map[int]string{1: one, 2: two}); !errors.Is(err, cluster.ErrSchemaNewer) {
		t.Fatalf("a binary without 3: %v, want ErrSchemaNewer", err)
	}
}
