package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// TestSoak runs the real binary as a sidecar at a steady rate for
// APIWARDEN_SOAK (e.g. "10m") and checks that memory stays flat and the
// goroutine count does not grow. It is a long, opt-in run (see
// docs/BENCHMARKS.md), not part of the normal test command.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("APIWARDEN_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set APIWARDEN_SOAK=10m to run the soak test")
	}
	rate := 500
	if v, err := strconv.Atoi(os.Getenv("APIWARDEN_SOAK_RATE")); err == nil && v > 0 {
		rate = v
	}
	bin := buildBinary(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"frm_1","ok":true}`)
	}))
	defer up.Close()
	listen, admin := edgetest.FreeAddr(t), edgetest.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "soak.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[server]
listen = %q
admin_listen = %q
data_dir = %q
log_level = "warn"
[proxy]
upstream = %q
[tiers.soak]
requests_per_hour = 100000000
burst_per_minute = 100000000
[[routes]]
path = "/public/*"
preset = "public"
`, listen, admin, filepath.Join(t.TempDir(), "data"), up.URL)), 0o600)
	p := startProcess(t, bin, cfg, listen, admin, "APIWARDEN_ADMIN_TOKEN=soak-test-admin-token-0123")
	env := envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": "soak-test-admin-token-0123", "APIWARDEN_URL": "http://" + admin})
	var secrets []string
	for range 50 {
		out := runCLI(t, env, "keys", "create", "-tier", "soak", "-json")
		i := strings.Index(out, `"secret": "`)
		secrets = append(secrets, out[i+11:i+11+40])
	}

	sample := func() (goroutines, rss, heap float64) {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "go_goroutines":
				goroutines = v
			case "process_resident_memory_bytes":
				rss = v
			case "go_memstats_heap_inuse_bytes":
				heap = v
			}
		}
		return
	}

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 5 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * 8 / time.Duration(rate))
			defer tick.Stop()
			for i := w; ; i += 8 {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				path := fmt.Sprintf("/api/forms/%d", i%500)
				req, _ := http.NewRequest("GET", "http://"+listen+path, nil)
				if i%10 == 0 {
					req.URL.Path = fmt.Sprintf("/public/%d", i) // a new client address's worth of public traffic
				} else {
					req.Header.Set("X-API-Key", secrets[i%len(secrets)])
				}
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					failed.Add(1)
				}
			}
		}()
	}
	warmup := min(2*time.Minute, d/5)
	time.Sleep(warmup)
	g0, rss0, heap0 := sample()
	t.Logf("after %s warm-up: %.0f goroutines, RSS %.1f MiB, heap %.1f MiB", warmup, g0, rss0/(1<<20), heap0/(1<<20))
	var maxRSS float64
	for elapsed := warmup; elapsed < d; elapsed += 30 * time.Second {
		time.Sleep(30 * time.Second)
		g, rss, heap := sample()
		maxRSS = max(maxRSS, rss)
		t.Logf("%6s: %.0f goroutines, RSS %.1f MiB, heap %.1f MiB, %d requests", elapsed+30*time.Second, g, rss/(1<<20), heap/(1<<20), sent.Load())
	}
	close(stop)
	wg.Wait()
	g1, rss1, _ := sample()
	t.Logf("end: %d requests (%d failed), %.0f goroutines, RSS %.1f MiB (max %.1f)", sent.Load(), failed.Load(), g1, rss1/(1<<20), maxRSS/(1<<20))
	if failed.Load() > sent.Load()/1000 {
		t.Errorf("%d of %d requests failed", failed.Load(), sent.Load())
	}
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %.0f to %.0f", g0, g1)
	}
	if maxRSS > rss0*1.5+32<<20 {
		t.Errorf("memory grew from %.1f MiB to %.1f MiB", rss0/(1<<20), maxRSS/(1<<20))
	}
	_ = p
}
