package cluster_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/keys"
)

// BenchmarkKeyStorage sizes the PostgreSQL a cluster needs: 10,000 keys
// created through one instance by 8 writers at once (as many as its pool
// holds), then the rows and bytes of the key tables, how much the
// database grew, and the connections the instance holds (application_name
// is the instance's). Run it once: -benchtime 1x.
func BenchmarkKeyStorage(b *testing.B) {
	const total, writers = 10_000, 8
	for b.Loop() {
		url := pg.Database(b)
		in := newInstance(b, url)
		ctx := ctxFor(b, 5*time.Minute)
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		var emptyBytes int64 // the migrated schema, before any key
		if err := pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&emptyBytes); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := w; i < total; i += writers {
					p := keys.CreateParams{Name: fmt.Sprintf("customer %d production", i), OwnerID: fmt.Sprintf("org_%d", i/3),
						Tier: "basic", Scopes: []string{"read", "write"}, Meta: map[string]string{"plan": "team"}}
					if _, _, err := in.keys.Create(p, "admin"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		var conns int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, "apiwarden/"+b.Name()).Scan(&conns); err != nil {
			b.Fatal(err)
		}
		var keyRows, eventRows, keyBytes, eventBytes, dbBytes int64
		err = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM apiwarden_keys), (SELECT count(*) FROM apiwarden_key_events),
			pg_total_relation_size('apiwarden_keys'), pg_total_relation_size('apiwarden_key_events'), pg_database_size(current_database())`).
			Scan(&keyRows, &eventRows, &keyBytes, &eventBytes, &dbBytes)
		if err != nil {
			b.Fatal(err)
		}
		if keyRows != total {
			b.Fatalf("%d key rows, want %d", keyRows, total)
		}
		b.ReportMetric(float64(conns), "conns")
		b.ReportMetric(float64(eventRows), "event-rows")
		b.ReportMetric(float64(keyBytes)/total, "key-B/key")
		b.ReportMetric(float64(eventBytes)/float64(eventRows), "event-B/event")
		b.ReportMetric(float64(dbBytes)/(1<<20), "db-MiB")
		b.ReportMetric(float64(dbBytes-emptyBytes)/(1<<20), "growth-MiB")
	}
}
