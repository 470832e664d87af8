package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

// A single instance's keys, imported into a cluster, work on both of its
// instances (fresh data directories): the issued secret passes, the
// revoked key is refused.
func TestClusterImportedKeysWorkOnEveryInstance(t *testing.T) {
	dir := t.TempDir()
	single, stop := startApp(t, func(c *config.Config) {
		c.Server.DataDir = dir
		c.Tiers["enterprise"] = config.Tier{RequestsPerHour: 1_000_000, BurstPerMinute: 100_000}
	})
	kept, revoked := createKey(t, single), createKey(t, single)
	if status, body := adminCall(t, single, "DELETE", "/admin/v1/keys/"+revoked.Key.ID, ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	stop()
	secret := []byte("telemetry-test-secret-0123") // startApp's, and so every instance's

	url := pg.Database(t)
	src, err := store.OpenReadOnly(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := cluster.Open(ctx, cluster.Options{URL: url, KeySecretCheck: keys.SecretCheck(secret)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	report, err := c.Import(ctx, src, cluster.ImportOptions{})
	if err != nil || report.Steps[0].Imported != 2 {
		t.Fatalf("import: %+v, %v", report, err)
	}

	a, _ := startClusterApp(t, url, "a", "")
	b, _ := startClusterApp(t, url, "b", "")
	for name, in := range map[string]*app.App{"a": a, "b": b} {
		if got := checkKey(t, in, kept.Secret); got != "VALID" {
			t.Errorf("imported key on %s: %s, want VALID", name, got)
		}
		if got := checkKey(t, in, revoked.Secret); got != "REVOKED" {
			t.Errorf("revoked imported key on %s: %s, want REVOKED", name, got)
		}
	}
}
