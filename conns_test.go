package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// TestConnections holds APIWARDEN_CONNS (e.g. "10000") keep-alive
// connections open through the real binary in proxy mode, drives requests
// over all of them for APIWARDEN_CONNS_DURATION (default 30s), and reports
// the proxy's resident memory (VmRSS, VmHWM) and goroutines with no
// connection, with every connection idle, under load, idle again, and
// after the connections are closed (waiting up to APIWARDEN_CONNS_SETTLE,
// default 30s, for the memory to come back). It fails on any transport
// error or non-2xx answer, on a peak RSS over APIWARDEN_CONNS_MAX_RSS_MB
// (default 256) at any time, closing the connections included, and when
// goroutines do not come back to the count before the connections were
// opened. APIWARDEN_CONNS_BINARY runs another build
// instead of this tree's, for a before-and-after. APIWARDEN_CONNS_EDGE
// sets [server] edge ("fasthttp", or "fasthttp, reduce_idle_memory" for
// fasthttp with reduce_idle_memory on, "net/http", or "evloop"; default the
// configuration's, "auto", which is evloop here) and
// APIWARDEN_CONNS_MAX_HEADER_BYTES [server] max_header_bytes (which sizes
// each connection's read buffer), APIWARDEN_CONNS_MEMORY_LIMIT [server]
// memory_limit (e.g. "200MiB"). With APIWARDEN_CONNS_PROFILES=DIR it saves
// heap and goroutine profiles with no connection, with every connection
// idle, half-way through the load, idle again and once they are closed
// (heap-idle0.pprof, heap-idle.pprof, heap.pprof, heap-again.pprof,
// heap-closed.pprof, …). The upstream runs in a separate process (this
// test binary again, TestConnectionsUpstream), so that neither process
// needs more than one descriptor per connection on each side. It is an
// opt-in measurement (see docs/BENCHMARKS.md), not part of the normal
// test command.
func TestConnections(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("APIWARDEN_CONNS"))
	if n <= 0 {
		t.Skip("set APIWARDEN_CONNS=10000 to run the connection-memory measurement")
	}
	duration := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("APIWARDEN_CONNS_DURATION")); err == nil && d > 0 {
		duration = d
	}
	maxRSS := 256.0
	if v, err := strconv.ParseFloat(os.Getenv("APIWARDEN_CONNS_MAX_RSS_MB"), 64); err == nil && v > 0 {
		maxRSS = v
	}
	settleAfter := 30 * time.Second // for memory to come back once the connections are closed
	if d, err := time.ParseDuration(os.Getenv("APIWARDEN_CONNS_SETTLE")); err == nil && d > 0 {
		settleAfter = d
	}
	raiseFileLimit(t, n)

	bin := os.Getenv("APIWARDEN_CONNS_BINARY") // another build to compare with
	if bin == "" {
		bin = buildBinary(t)
	}
	edge := ""
	switch e := os.Getenv("APIWARDEN_CONNS_EDGE"); e {
	case "":
	case "net/http":
		edge = "edge = \"net/http\"\n"
	case "fasthttp":
		edge = "edge = \"fasthttp\"\n"
	case "fasthttp, reduce_idle_memory":
		edge = "edge = \"fasthttp\"\nreduce_idle_memory = true\n"
	case "evloop":
		edge = "edge = \"evloop\"\n"
	default:
		t.Fatalf("APIWARDEN_CONNS_EDGE %q: want net/http, fasthttp, \"fasthttp, reduce_idle_memory\" or evloop", e)
	}
	if v, err := strconv.Atoi(os.Getenv("APIWARDEN_CONNS_MAX_HEADER_BYTES")); err == nil && v > 0 {
		edge += fmt.Sprintf("max_header_bytes = %d\n", v)
	}
	if v := os.Getenv("APIWARDEN_CONNS_MEMORY_LIMIT"); v != "" {
		edge += fmt.Sprintf("memory_limit = %q\n", v)
	}
	p, listen, admin, secret := startConnsProxy(t, bin, edge)
	request := []byte("GET /api/items/1 HTTP/1.1\r\nHost: " + listen + "\r\nX-API-Key: " + secret + "\r\n\r\n")

	pid := p.cmd.Process.Pid
	sample := func(phase string) connsSample {
		g := runtimeOf(t, admin)
		s := connsSample{phase: phase, goroutines: int(g["go_goroutines"]),
			heap: g["go_memstats_heap_inuse_bytes"] / (1 << 20), stacks: g["go_memstats_stack_inuse_bytes"] / (1 << 20)}
		s.rss, s.hwm = memoryOf(t, pid)
		t.Logf("%-22s RSS %6.1f MiB  peak %6.1f MiB  heap in use %6.1f MiB  stacks %6.1f MiB  goroutines %6d",
			phase, s.rss, s.hwm, g["go_memstats_heap_inuse_bytes"]/(1<<20), g["go_memstats_stack_inuse_bytes"]/(1<<20), s.goroutines)
		return s
	}
	base := sample("no connection")
	profiles := os.Getenv("APIWARDEN_CONNS_PROFILES")
	if profiles != "" {
		saveProfiles(t, admin, connsToken, profiles, "-idle0")
	}

	// Each connection sends one request as soon as it is open: the server
	// closes a connection that sends nothing within read_header_timeout.
	var load connsLoad
	conns := dialAll(t, listen, n, func(c *connsConn) { load.exchange(c, request) })
	if load.failed.Load() > 0 {
		t.Fatalf("%d of %d first requests failed: %s", load.failed.Load(), n, *load.firstErr.Load())
	}
	idle := sample(fmt.Sprintf("%d idle", n))
	if profiles != "" {
		saveProfiles(t, admin, connsToken, profiles, "-idle")
	}

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && load.exchange(c, request) {
			}
		}()
	}
	busyPeak := connsSample{}
	var busyStacks, busyHeap float64 // MiB
	profileAt := time.Now().Add(duration / 2)
	for tick := time.NewTicker(time.Second); ctx.Err() == nil; {
		select {
		case <-ctx.Done():
		case <-tick.C:
			g := runtimeOf(t, admin)
			rss, _ := memoryOf(t, pid)
			busyPeak.rss, busyPeak.goroutines = max(busyPeak.rss, rss), max(busyPeak.goroutines, int(g["go_goroutines"]))
			busyStacks, busyHeap = max(busyStacks, g["go_memstats_stack_inuse_bytes"]/(1<<20)), max(busyHeap, g["go_memstats_heap_inuse_bytes"]/(1<<20))
			if profiles != "" && time.Now().After(profileAt) {
				profileAt = time.Now().Add(time.Hour)
				saveProfiles(t, admin, connsToken, profiles, "")
			}
		}
	}
	wg.Wait()
	cancel()
	busy := sample(fmt.Sprintf("%d busy, %s", n, duration))
	t.Logf("under load: %d requests, %.0f req/s; highest sampled: RSS %.1f MiB, heap in use %.1f MiB, stacks %.1f MiB, goroutines %d",
		load.done.Load(), float64(load.done.Load())/duration.Seconds(), busyPeak.rss, busyHeap, busyStacks, busyPeak.goroutines)
	settle(t, pid, sample, fmt.Sprintf("%d idle again", n), idle.rss, 30*time.Second)
	if profiles != "" {
		saveProfiles(t, admin, connsToken, profiles, "-again")
	}
	for _, c := range conns {
		c.Close()
	}
	closed := waitGoroutines(t, admin, base.goroutines)
	after := settle(t, pid, sample, "connections closed", base.rss, settleAfter)
	if profiles != "" {
		saveProfiles(t, admin, connsToken, profiles, "-closed")
	}

	perIdle := (idle.rss - base.rss) * 1024 / float64(n)
	perBusy := (busy.hwm - base.rss) * 1024 / float64(n)
	t.Logf("per connection: %.1f KiB idle, %.1f KiB busy (peak); %d errors, %d non-2xx; goroutines %d → %d → %d",
		perIdle, perBusy, load.failed.Load(), load.non2xx.Load(), base.goroutines, busy.goroutines, closed)
	perConn := func(mib float64) float64 { return mib * 1024 / float64(n) }
	t.Logf("per idle connection: %.1f KiB of heap in use, %.1f KiB of stacks; under load (highest sampled) %.1f KiB of heap, %.1f KiB of stacks",
		perConn(idle.heap-base.heap), perConn(idle.stacks-base.stacks), perConn(busyHeap-base.heap), perConn(busyStacks-base.stacks))
	// VmHWM only grows: the last sample's is the peak of the whole run,
	// closing the connections included.
	t.Logf("summary: base %.1f MiB, idle %.1f MiB, peak %.1f MiB under load, %.1f MiB in all, after %.1f MiB, %.0f req/s",
		base.rss, idle.rss, busy.hwm, after.hwm, after.rss, float64(load.done.Load())/duration.Seconds())
	if f := load.failed.Load(); f > 0 {
		t.Errorf("%d requests failed: %s", f, *load.firstErr.Load())
	}
	if f := load.non2xx.Load(); f > 0 {
		t.Errorf("%d answers were not 2xx; the first: %s", f, *load.firstNon2xx.Load())
	}
	if after.hwm > maxRSS {
		t.Errorf("peak RSS %.1f MiB, over %.0f MiB", after.hwm, maxRSS)
	}
	if closed > base.goroutines+5 {
		t.Errorf("goroutines grew from %d to %d after the connections closed", base.goroutines, closed)
	}
}

// connsToken is the admin token of startConnsProxy's process.
const connsToken = "conns-test-admin-token-0123456"

// startConnsProxy starts bin in proxy mode in front of a
// TestConnectionsUpstream child, with the [server] lines extra (an edge,
// limits), pprof and the admin metrics on, and a key of an unlimited
// tier; it returns the process, its listen and admin addresses and the
// key's secret.
func startConnsProxy(t *testing.T, bin, extra string) (p *process, listen, admin, secret string) {
	t.Helper()
	upstream := startConnsUpstream(t)
	listen, admin = edgetest.FreeAddr(t), edgetest.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "conns.toml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[server]
listen = %q
admin_listen = %q
data_dir = %q
log_level = "warn"
debug_pprof = true
%s[proxy]
upstream = "http://%s"
[tiers.unlimited]
requests_per_hour = 1000000000000
burst_per_minute = 1000000000000
`, listen, admin, filepath.Join(t.TempDir(), "data"), extra, upstream)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p = startProcess(t, bin, cfg, listen, admin, "APIWARDEN_ADMIN_TOKEN="+connsToken)
	env := envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": connsToken, "APIWARDEN_URL": "http://" + admin})
	out := runCLI(t, env, "keys", "create", "-tier", "unlimited", "-json")
	i := strings.Index(out, `"secret": "`)
	if i < 0 {
		t.Fatalf("no secret in %s", out)
	}
	return p, listen, admin, out[i+11 : i+11+40]
}

// TestConnectionsUpstream is TestConnections' upstream when this test
// binary is started with APIWARDEN_CONNS_UPSTREAM set to a file to write
// its address to; it serves until killed.
func TestConnectionsUpstream(t *testing.T) {
	addrFile := os.Getenv("APIWARDEN_CONNS_UPSTREAM")
	if addrFile == "" {
		t.Skip("the upstream of TestConnections, started by it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"item_1","ok":true}`)
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
}

// startConnsUpstream starts TestConnectionsUpstream in a child process and
// returns its address.
func startConnsUpstream(t *testing.T) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "upstream.addr")
	cmd := exec.Command(os.Args[0], "-test.run=^TestConnectionsUpstream$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), "APIWARDEN_CONNS_UPSTREAM="+addrFile, "APIWARDEN_CONNS=")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return string(b)
		}
	}
	t.Fatal("the upstream did not start")
	return ""
}

// raiseFileLimit lifts the soft descriptor limit to the hard one (the
// child processes inherit it) and fails when even that is too low for n
// connections on each side.
func raiseFileLimit(t *testing.T, n int) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < uint64(n)+1000 {
		t.Fatalf("the descriptor limit is %d; %d connections need %d (raise the hard limit)", lim.Max, n, n+1000)
	}
	t.Logf("descriptor limit %d", lim.Max)
}

// dialAll opens n connections, 64 dials at a time so the listen backlog
// never overflows, and calls first on each as soon as it is open.
func dialAll(t *testing.T, addr string, n int, first func(*connsConn)) []*connsConn {
	t.Helper()
	conns := make([]*connsConn, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := net.DialTimeout("tcp", addr, 30*time.Second)
			if err != nil {
				failed.Store(err)
				return
			}
			conns[i] = &connsConn{Conn: c, br: bufio.NewReaderSize(c, 1024)}
			first(conns[i])
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("dialing %d connections: %v", n, err)
	}
	return conns
}

// connsConn is one keep-alive client connection.
type connsConn struct {
	net.Conn
	br *bufio.Reader
}

// connsLoad counts what the connections did.
type connsLoad struct {
	done, failed, non2xx atomic.Int64
	firstErr             atomic.Pointer[string]
	firstNon2xx          atomic.Pointer[string] // status and body
}

// exchange sends one request on c and reads its answer; false when the
// connection is no longer usable.
func (l *connsLoad) exchange(c *connsConn, request []byte) bool {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	_, err := c.Write(request)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(c.br, nil)
	}
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		l.failed.Add(1)
		msg := err.Error()
		l.firstErr.CompareAndSwap(nil, &msg)
		return false
	}
	l.done.Add(1)
	if resp.StatusCode/100 != 2 {
		l.non2xx.Add(1)
		msg := resp.Status + ": " + string(body)
		l.firstNon2xx.CompareAndSwap(nil, &msg)
	}
	return true
}

type connsSample struct {
	phase                  string
	rss, hwm, heap, stacks float64 // MiB: VmRSS, VmHWM, heap in use, stacks in use
	goroutines             int
}

// memoryOf reads VmRSS and VmHWM (the peak) of a process, in MiB.
func memoryOf(t *testing.T, pid int) (rss, hwm float64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// goroutinesOf reads go_goroutines from the admin listener's /metrics.
func goroutinesOf(t *testing.T, admin string) int {
	t.Helper()
	return int(runtimeOf(t, admin)["go_goroutines"])
}

// runtimeOf reads the Go runtime's gauges (go_goroutines,
// go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes, …) from
// the admin listener's /metrics.
func runtimeOf(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	gauges := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if name, v, ok := strings.Cut(sc.Text(), " "); ok && strings.HasPrefix(name, "go_") {
			gauges[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	if _, ok := gauges["go_goroutines"]; !ok {
		t.Fatal("no go_goroutines in /metrics")
	}
	return gauges
}

// waitGoroutines polls until the goroutine count is back to want (plus a
// few for the samples' own connections), or 30 s have passed, and returns
// the last count.
func waitGoroutines(t *testing.T, admin string, want int) int {
	t.Helper()
	var g int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if g = goroutinesOf(t, admin); g <= want+5 {
			break
		}
	}
	return g
}

// settle polls the process's RSS every second for up to wait, until it
// is within 10% of target (the Go runtime hands freed memory back to the
// system over a few seconds), then takes the phase's sample.
func settle(t *testing.T, pid int, sample func(string) connsSample, phase string, target float64, wait time.Duration) connsSample {
	t.Helper()
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(time.Second) {
		if rss, _ := memoryOf(t, pid); rss <= target*1.1 {
			break
		}
	}
	return sample(phase)
}

// saveProfiles writes the proxy's heap and goroutine profiles into dir
// (APIWARDEN_CONNS_PROFILES), as heap<suffix>.pprof and
// goroutine<suffix>.pprof.
func saveProfiles(t *testing.T, admin, token, dir, suffix string) {
	t.Helper()
	for _, name := range []string{"heap", "goroutine"} {
		req, _ := http.NewRequest("GET", "http://"+admin+"/debug/pprof/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("profile %s: %d %v", name, resp.StatusCode, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+suffix+".pprof"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("heap and goroutine profiles (%q) written to %s", suffix, dir)
}
