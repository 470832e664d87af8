package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// Two instances each take records through /v1/events; every record lands
// once in the cluster's PostgreSQL, and /metrics and GET /admin/v1/cluster
// show nothing left waiting.
func TestClusterShipsEventsOfEveryInstance(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "")
	b, _ := startClusterApp(t, url, "b", "")
	now := time.Now().UTC()
	for i, inst := range []string{"a", "b"} {
		var body strings.Builder
		for j := range 100 {
			fmt.Fprintf(&body, `{"time":%q,"method":"GET","path":"/x/%d","status":200,"request_id":"%s-%d"}`+"\n",
				now.Add(-time.Duration(j)*time.Second).Format(time.RFC3339), j, inst, j)
		}
		target := []string{a.Addr(), b.Addr()}[i]
		if got := call(t, "POST", "http://"+target+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson"}, body.String()); got.status != 202 {
			t.Fatalf("events on %s: %d %s", inst, got.status, got.body)
		}
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	count := func(inst string) (n int) {
		_ = pool.QueryRow(context.Background(), `SELECT count(DISTINCT request_id) FROM apiwarden_records WHERE instance_id = $1`, inst).Scan(&n)
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for count("a") != 100 || count("b") != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("shipped: a %d, b %d; want 100 each", count("a"), count("b"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var total int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM apiwarden_records`).Scan(&total); err != nil || total != 200 {
		t.Fatalf("%d rows, %v; want 200", total, err)
	}
	// Cluster mode marks the cells each flush changes, so the rollups
	// follow: each instance's daily total counts its 100 requests.
	counted := func(inst string) (n int) {
		_ = pool.QueryRow(context.Background(), `SELECT coalesce(sum(count), 0) FROM apiwarden_cells
			WHERE instance_id = $1 AND interval = 2 AND dim = 1`, inst).Scan(&n)
		return n
	}
	for counted("a") != 100 || counted("b") != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("daily totals in PostgreSQL: a %d, b %d; want 100 each", counted("a"), counted("b"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A round sets its gauge and counter after its commit, so the rows
	// can be seen a moment before them.
	edgetest.Poll(t, 20*time.Second, "a's waiting records gauge 0 and b's shipped records counter 100", func() bool {
		return metricValue(t, a, "apiwarden_cluster_ship_waiting_records") == "0" &&
			metricValue(t, b, "apiwarden_cluster_shipped_records_total") == "100"
	})
	if got := metricValue(t, b, "apiwarden_cluster_ship_erased_records_total"); got != "0" {
		t.Errorf("b's erased records counter: %q, want 0 (nothing was erased)", got)
	}
	// Each instance lists itself once its heartbeat and its first shipping
	// round have written its row: poll rather than race them.
	edgetest.Poll(t, 20*time.Second, "GET /admin/v1/cluster lists both instances with ship_waiting and ship_waiting_cells", func() bool {
		status, body := adminCall(t, a, "GET", "/admin/v1/cluster", "")
		var view struct {
			Instances []struct {
				ID               string `json:"id"`
				ShipWaiting      *int64 `json:"ship_waiting"`
				ShipWaitingCells *int64 `json:"ship_waiting_cells"`
			} `json:"instances"`
		}
		if status != 200 || json.Unmarshal(body, &view) != nil || len(view.Instances) != 2 {
			return false
		}
		for _, in := range view.Instances {
			if in.ShipWaiting == nil || in.ShipWaitingCells == nil {
				return false
			}
		}
		return true
	})
}
