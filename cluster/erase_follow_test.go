package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// An erasure committed on instance a reaches instance b's data file
// through the notification: b's follower erases the key's unshipped
// records there, so b's shipper has none left to drop.
func TestErasureFollowerErasesTheLocalFile(t *testing.T) {
	url := pg.Database(t)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	follow := cluster.NewErasureFollower(b.cluster, metrics.NewEraser(b.st, b.rec, nil))
	lis := cluster.NewListener(b.cluster, idleMirror{}, cluster.ListenerOptions{MaxBackoff: 200 * time.Millisecond,
		Handlers: map[string]func(string){cluster.ErasuresChannel: follow.Notify}})
	runDone, listenDone := make(chan error, 1), make(chan error, 1)
	go func() { runDone <- follow.Run(context.Background()) }()
	go func() { listenDone <- lis.Run(context.Background()) }()
	t.Cleanup(func() {
		lis.Stop()
		<-listenDone
		follow.Stop()
		<-runDone
	})
	within(t, 10*time.Second, "b's listener connected", b.cluster.Healthy)

	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b.record(t, 700, start, time.Second) // waits in b's data file
	waiting := func() int64 {
		bl, err := b.rd.ShipBacklog()
		if err != nil {
			t.Fatal(err)
		}
		return int64(bl.Records)
	}
	if n := waiting(); n != 700 {
		t.Fatalf("%d records waiting in b's data file, want 700", n)
	}
	req := metrics.EraseRequest{KeyID: "key_3", Rollups: true, RequestedBy: "admin:test"}
	if _, err := a.cluster.EraseUsage(ctxFor(t, 30*time.Second), req, nil); err != nil {
		t.Fatal(err)
	}
	key3 := int64(keyCounts(700)["key_3"])
	within(t, 10*time.Second, "b's data file erased", func() bool { return waiting() == 700-key3 })

	b.drain(t)
	if n := b.ship.ErasedRecords(); n != 0 {
		t.Fatalf("b's shipper dropped %d records: the local erasure left them", n)
	}
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_records`); n != 700-int(key3) {
		t.Fatalf("%d records in PostgreSQL, want %d", n, 700-key3)
	}
	if n := countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_cells WHERE dim = $1 AND value = 'key_3'`, int16(metrics.DimKey)); n != 0 {
		t.Fatalf("%d cells of key_3 in PostgreSQL", n)
	}
}
