package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// In cluster mode the erase route deletes the key's shipped records from
// PostgreSQL too, and records shipped afterwards do not bring them back.
func TestClusterEraseReachesPostgres(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "")
	k := createKey(t, a)
	status, body := adminCall(t, a, "POST", "/admin/v1/keys", `{"name":"stays","owner_id":"org_2","tier":"enterprise"}`)
	var other edgetest.Key
	if status != http.StatusCreated || json.Unmarshal(body, &other) != nil {
		t.Fatalf("create: %d %s", status, body)
	}
	now := time.Now().UTC()
	var events strings.Builder
	for j := range 40 {
		key, agent := other.Key.ID, "SharedAgent/1.0"
		if j%2 == 0 {
			key, agent = k.Key.ID, fmt.Sprintf("ClusterEraseAgent/%d", j)
		}
		fmt.Fprintf(&events, `{"time":%q,"method":"GET","path":"/x","status":200,"key_id":%q,"user_agent":%q,"client_ip":"2001:db8:e5a5::%x"}`+"\n",
			now.Add(-time.Duration(j)*time.Second).Format(time.RFC3339Nano), key, agent, j+1)
	}
	if r := call(t, "POST", "http://"+a.Addr()+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson"}, events.String()); r.status != 202 {
		t.Fatalf("events: %d %s", r.status, r.body)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	count := func(where string, args ...any) (n int) {
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM apiwarden_records WHERE `+where, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	edgetest.Poll(t, 20*time.Second, "40 records shipped", func() bool { return count("true") == 40 })

	status, body = adminCall(t, a, "DELETE", "/admin/v1/keys/"+k.Key.ID+"/data", "")
	var answer struct {
		RawRecords     int `json:"raw_records"`
		ClusterRecords int `json:"cluster_records"`
	}
	// The data file holds the key's records only until their blocks are
	// trimmed after shipping, so the local count is anything up to 20.
	if status != 200 || json.Unmarshal(body, &answer) != nil || answer.RawRecords > 20 || answer.ClusterRecords != 20 {
		t.Fatalf("erase: %d %s", status, body)
	}
	if n := count("key_id = $1 OR user_agent LIKE 'ClusterEraseAgent/%'", k.Key.ID); n != 0 {
		t.Fatalf("%d of the key's records left in PostgreSQL", n)
	}
	if n := count("key_id = $1", other.Key.ID); n != 20 {
		t.Fatalf("%d of the other key's records in PostgreSQL, want 20", n)
	}
	// The erasure is on record for the other instances' shippers and
	// followers, with who asked and where it ran.
	var who, where string
	var id int64
	if err := pool.QueryRow(context.Background(), `SELECT id, requested_by, instance_id FROM apiwarden_erasures
		WHERE key_ids = ARRAY[$1]`, k.Key.ID).Scan(&id, &who, &where); err != nil || who == "" || where != "a" {
		t.Fatalf("the erasure's row: requested_by %q, instance_id %q, err %v", who, where, err)
	}
	// The instance's own follower passes its own erasure and says so on
	// /metrics, with no failed catch-up.
	edgetest.Poll(t, 20*time.Second, "the follower's mark past the erasure on /metrics", func() bool {
		return metricValue(t, a, "apiwarden_cluster_erasure_applied_id") == fmt.Sprint(id)
	})
	if got := metricValue(t, a, "apiwarden_cluster_erasure_catchup_failures_total"); got != "0" {
		t.Fatalf("apiwarden_cluster_erasure_catchup_failures_total %s, want 0", got)
	}
}
