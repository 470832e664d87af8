package cluster_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
)

// A session saved by one instance is read by another and ended for both;
// a save drops sessions that have expired.
func TestSessionsAreShared(t *testing.T) {
	url := pg.Database(t)
	ctx := ctxFor(t, 30*time.Second)
	open := func() *cluster.Cluster {
		c, err := cluster.Open(ctx, cluster.Options{URL: url, KeySecretCheck: keys.SecretCheck([]byte(testSecret))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	a, b := open(), open()
	live, stale := sha256.Sum256([]byte("live")), sha256.Sum256([]byte("stale"))
	expires := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	if err := a.SaveSession(ctx, stale, "old", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveSession(ctx, live, "csrf-1", expires); err != nil {
		t.Fatal(err)
	}
	csrf, exp, ok, err := b.LoadSession(ctx, live)
	if err != nil || !ok || csrf != "csrf-1" || !exp.Equal(expires) {
		t.Fatalf("B loads %q %v %v %v, want csrf-1 until %v", csrf, exp, ok, err, expires)
	}
	if _, _, ok, err := b.LoadSession(ctx, stale); err != nil || ok {
		t.Fatalf("the expired session survived the next save: %v %v", ok, err)
	}
	if err := b.EndSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := a.LoadSession(ctx, live); err != nil || ok {
		t.Fatalf("ended on B, still on A: %v %v", ok, err)
	}
}
