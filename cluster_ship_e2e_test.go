package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// shipConfig is crashConfig's sidecar (every path internal, recorded) in
// cluster mode on database pgURL.
func shipConfig(t *testing.T, dataDir, upstream, pgURL string) (path, listen, admin string) {
	path, listen, admin = crashConfig(t, dataDir, upstream)
	cluster := fmt.Sprintf(`
[security]
key_secret = "env:APIWARDEN_KEY_SECRET"

[cluster]
postgres_url = %q
instance_id = "shipper"
`, pgURL)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(cluster); err != nil {
		t.Fatal(err)
	}
	return path, listen, admin
}

// steadyTraffic sends requests one after another from two goroutines
// until stop is called, counting the 200s in ok; stop waits for them.
func steadyTraffic(base string, ok *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			client := &http.Client{Timeout: 2 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				resp, err := client.Get(fmt.Sprintf("%s/api/forms/%d/%d", base, g, i))
				if err != nil {
					return // the process is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// An instance SIGKILLed while it records and ships, restarted on the same
// data file and stopped with SIGTERM: PostgreSQL holds exactly the records
// the data file ever committed (its rollups count them; the raw blocks
// shipped are deleted from it), each request id once.
func TestClusterShipSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	up := upstreamOK(t)
	url := pg.Database(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows := func() (n, distinct int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Before the first round the table may not exist yet.
		_ = pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT request_id) FROM apiwarden_records`).Scan(&n, &distinct)
		return n, distinct
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg, listen, admin := shipConfig(t, dataDir, up.URL, url)
	env := "APIWARDEN_KEY_SECRET=" + clusterKeySecret

	p := startProcess(t, bin, cfg, listen, admin, env)
	var ok atomic.Int64
	stop := steadyTraffic("http://"+listen, &ok)
	edgetest.Poll(t, 30*time.Second, "records shipped while traffic runs", func() bool { n, _ := rows(); return n >= 500 })
	err = p.signal(t, syscall.SIGKILL)
	stop()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("expected the process to die of SIGKILL, got %v", err)
	}
	killed := ok.Load()

	p = startProcess(t, bin, cfg, listen, admin, env)
	stop = steadyTraffic("http://"+listen, &ok)
	edgetest.Poll(t, 30*time.Second, "traffic after the restart", func() bool { return ok.Load() >= killed+500 })
	stop()
	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM exit: %v\n%s", err, p.log.String())
	}
	raw, recorded := storedCounts(t, dataDir)
	n, distinct := rows()
	t.Logf("%d requests answered, %d recorded in the data file (%d raw records left in it), %d rows in PostgreSQL (%d distinct request ids)",
		ok.Load(), recorded, raw, n, distinct)
	if uint64(n) != recorded || distinct != n {
		t.Fatalf("PostgreSQL has %d rows with %d distinct request ids; the data file recorded %d", n, distinct, recorded)
	}
	if raw != 0 {
		t.Errorf("%d raw records left in the data file after a clean shutdown shipped them, want 0", raw)
	}
}
