package cluster_test

import (
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// BenchmarkShip records 200,000 requests over two UTC days into a data
// file and times shipping them all to an empty database with the
// default round size: records/s sustained over the drain, and the bytes
// a record takes in PostgreSQL (table and its TOAST, no index).
func BenchmarkShip(b *testing.B) {
	const n = 200_000
	for range b.N {
		b.StopTimer()
		node := newDrainNode(b, metrics.Options{MarkChangedCells: true})
		node.record(b, n, time.Now().UTC().Add(-36*time.Hour), 500*time.Millisecond)
		took := node.timedDrain(b, n)
		var bytes int64
		if err := node.cluster.Pool().QueryRow(ctxFor(b, time.Minute), `SELECT sum(pg_total_relation_size(relid))
			FROM pg_partition_tree('apiwarden_records') WHERE isleaf`).Scan(&bytes); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "records/s")
		b.ReportMetric(float64(bytes)/n, "bytes/record")
		b.StartTimer()
	}
}

// newDrainNode is a ship node in a fresh database whose shipper has the
// default options, as an instance's has.
func newDrainNode(b *testing.B, opts metrics.Options) *shipNode {
	b.Helper()
	node := newShipNodeWith(b, pg.Database(b), "bench", opts)
	sh, err := cluster.NewShipper(node.cluster, node.rd, cluster.ShipperOptions{})
	if err != nil {
		b.Fatal(err)
	}
	node.ship = sh
	return node
}

// timedDrain drains the node with the benchmark's timer running (it is
// stopped before and after), checks that records records arrived and
// returns how long the drain took.
func (n *shipNode) timedDrain(b *testing.B, records int) time.Duration {
	b.Helper()
	b.StartTimer()
	started := time.Now()
	n.drain(b)
	took := time.Since(started)
	b.StopTimer()
	wantShipped(b, n, records)
	return took
}
