package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/app"
)

// The retention duty is elected like the alerts duty and listed in GET
// /admin/v1/cluster; its leader drops a partition of records older than
// metrics.raw_retention_days as soon as it takes the duty, and counts it
// on /metrics.
func TestClusterRetentionDuty(t *testing.T) {
	url := pg.Database(t)
	first, stopFirst := startClusterApp(t, url, "pod-a", "")
	waitReadyz(t, 10*time.Second, "ready", first) // the schema is there
	stopFirst()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), `CREATE TABLE apiwarden_records_20200101 PARTITION OF apiwarden_records
		FOR VALUES FROM ('2020-01-01T00:00:00Z') TO ('2020-01-02T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	// Started again, the instance takes the duty and runs a pass at once.
	a, _ := startClusterApp(t, url, "pod-a", "")
	holder := func() string {
		var got struct {
			Leaders []struct{ Name, Holder string } `json:"leaders"`
		}
		status, body := adminCall(t, a, "GET", "/admin/v1/cluster", "")
		if status != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("cluster: %d %s", status, body)
		}
		for _, l := range got.Leaders {
			if l.Name == app.RetentionDuty {
				return l.Holder
			}
		}
		return ""
	}
	dropped := func() bool {
		var exists bool
		_ = pool.QueryRow(context.Background(), `SELECT to_regclass('apiwarden_records_20200101') IS NOT NULL`).Scan(&exists)
		return !exists
	}
	// The pass counts what it dropped once it is done: wait for both.
	counted := func() string { return metricValue(t, a, "apiwarden_cluster_retention_dropped_partitions_total") }
	for deadline := time.Now().Add(20 * time.Second); holder() == "" || !dropped() || counted() != "1"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("retention: holder %q, expired partition dropped %v, counter %s", holder(), dropped(), counted())
		}
	}
	if h := holder(); h != "pod-a" {
		t.Fatalf("retention duty held by %q, want pod-a", h)
	}
}
