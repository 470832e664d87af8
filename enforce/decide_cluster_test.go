package enforce_test

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
)

// BenchmarkDecideCluster is BenchmarkDecide with cluster mode off and on:
// "off" keeps the keys in bbolt alone; "on" makes a real PostgreSQL the
// keys' system of record, with the listener that keeps the mirror
// current running beside the decisions. The decision reads only the
// mirror, so the two should not differ. -count repeats each variant
// back to back; to interleave them, run the test binary several times
// with -test.count 1, and compare with benchstat -col /cluster.
func BenchmarkDecideCluster(b *testing.B) {
	b.Run("cluster=off", func(b *testing.B) { benchDecide(b, newWorld(b)) })
	b.Run("cluster=on", func(b *testing.B) {
		c := openCluster(b)
		w := newWorldOf(b, c)
		runListener(b, c, w.keys)
		benchDecide(b, w)
	})
}

// openCluster opens a cluster on a fresh database of pg, closed when the
// benchmark ends.
func openCluster(b *testing.B) *cluster.Cluster {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cluster.Open(ctx, cluster.Options{URL: pg.Database(b), InstanceID: "bench",
		KeySecretCheck: keys.SecretCheck([]byte(worldSecret))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// runListener keeps mirror current from c until the benchmark ends, and
// returns once it listens.
func runListener(b *testing.B, c *cluster.Cluster, mirror *keys.Service) {
	b.Helper()
	l := cluster.NewListener(c, mirror, cluster.ListenerOptions{})
	done := make(chan error, 1)
	go func() { done <- l.Run(context.Background()) }()
	b.Cleanup(func() {
		l.Stop()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !c.Healthy() {
		if time.Now().After(deadline) {
			b.Fatal("the mirror listener did not connect within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
