package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cli"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// demoProcess is `apiwarden demo` running as a subprocess, with what its
// banner said.
type demoProcess struct {
	cmd       *exec.Cmd
	done      chan error
	stdout    *lockedBuffer
	stderr    *lockedBuffer
	admin     string // http://host:port of the admin API and dashboard
	dashboard string
	token     string
	proxy     string
	dataDir   string
}

var bannerLine = regexp.MustCompile(`^\s+(Dashboard|Admin token|Proxy|Data):\s+(\S+)`)

// startDemo runs the binary's demo command and waits for its banner.
func startDemo(t *testing.T, bin string, args ...string) *demoProcess {
	t.Helper()
	p := &demoProcess{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"demo"}, args...)...)
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.stdout, line)
			if m := bannerLine.FindStringSubmatch(line); m != nil {
				switch m[1] {
				case "Dashboard":
					p.dashboard = m[2]
					p.admin = strings.TrimSuffix(m[2], "/ui/")
				case "Admin token":
					p.token = m[2]
				case "Proxy":
					p.proxy = m[2]
				case "Data":
					p.dataDir = m[2]
				}
			}
			if !signalled && p.dashboard != "" && p.token != "" && p.proxy != "" && p.dataDir != "" {
				signalled = true
				close(banner)
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("demo stdout:\n%s\ndemo stderr:\n%s", p.stdout, p.stderr)
		}
	})
	select {
	case <-banner:
	case err := <-p.done:
		t.Fatalf("demo exited before printing its banner: %v\n%s\n%s", err, p.stdout, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("no banner within a minute:\n%s\n%s", p.stdout, p.stderr)
	}
	return p
}

// get calls the admin API and decodes the answer into v; it returns the
// status.
func (p *demoProcess) get(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", p.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode
}

type demoAlert struct {
	ID      string `json:"id"`
	Rule    string `json:"rule"`
	Type    string `json:"type"`
	State   string `json:"state"`
	Summary string `json:"summary"`
}

// `apiwarden demo` on nothing but its defaults serves traffic through
// the proxy for about 20 seconds: the admin API then shows the demo keys
// in use, traffic on several routes, and at least one firing alert; an
// interrupt stops it cleanly and removes its temporary data directory.
func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the demo for 20 seconds")
	}
	bin := buildBinary(t)
	// -rate 2: enough traffic for several routes even at night.
	p := startDemo(t, bin, "-listen", edgetest.FreeAddr(t), "-rate", "2")
	started := time.Now()

	if resp, err := http.Get(p.dashboard); err != nil || resp.StatusCode != 200 {
		t.Fatalf("dashboard %s: %v %v", p.dashboard, resp, err)
	} else {
		resp.Body.Close()
	}
	if _, err := os.Stat(p.dataDir); err != nil {
		t.Fatalf("data directory: %v", err)
	}

	// Alerts: poll until one fires (rate_limit_exceeded on the abusive key
	// should after 10-15 s), and for at least 20 s of traffic.
	var firing []demoAlert
	for time.Since(started) < 60*time.Second {
		var page struct {
			Alerts []demoAlert `json:"alerts"`
		}
		status := p.get(t, "/admin/v1/alerts?state=firing", &page)
		if status == 404 {
			t.Errorf("GET /admin/v1/alerts answers 404: the alert evaluator is not wired into the app")
			break
		}
		if status != 200 {
			t.Fatalf("GET /admin/v1/alerts?state=firing: %d", status)
		}
		firing = page.Alerts
		if len(firing) > 0 && time.Since(started) >= 20*time.Second {
			break
		}
		time.Sleep(time.Second)
	}
	for _, a := range firing {
		t.Logf("firing after %v: %s (%s) %s", time.Since(started).Round(time.Second), a.Rule, a.Type, a.Summary)
	}
	if len(firing) == 0 && !t.Failed() {
		t.Errorf("no alert firing after %v", time.Since(started).Round(time.Second))
	}
	for time.Since(started) < 20*time.Second {
		time.Sleep(time.Second)
	}

	// Traffic: the demo keys are there and in use.
	var keyPage struct {
		Keys []struct {
			ID         string            `json:"id"`
			Tier       string            `json:"tier"`
			Status     string            `json:"status"`
			LastUsedAt *time.Time        `json:"last_used_at"`
			Meta       map[string]string `json:"meta"`
		} `json:"keys"`
	}
	if status := p.get(t, "/admin/v1/keys?limit=100", &keyPage); status != 200 {
		t.Fatalf("GET /admin/v1/keys: %d", status)
	}
	tiers, used := map[string]bool{}, map[string]bool{}
	for _, k := range keyPage.Keys {
		if k.Meta["demo"] == "" {
			continue
		}
		tiers[k.Tier] = true
		if k.LastUsedAt != nil {
			used[k.Meta["demo"]] = true
		}
	}
	if len(tiers) != 4 {
		t.Errorf("demo keys cover tiers %v, want all four", tiers)
	}
	for _, role := range []string{"enterprise-planner", "guestlist-sync"} {
		if !used[role] {
			t.Errorf("the %s key shows no use after 20 s; used: %v", role, used)
		}
	}

	// Routes: several have traffic. The analytics API says so when it is
	// there; /metrics always does.
	routes := map[string]float64{}
	var top struct {
		Items []struct {
			Value    string  `json:"value"`
			Requests float64 `json:"requests"`
		} `json:"items"`
	}
	if status := p.get(t, "/admin/v1/analytics/top?by=route&period=hour&limit=20", &top); status == 200 {
		for _, it := range top.Items {
			routes[it.Value] += it.Requests
		}
		var rt struct {
			LastMinute struct {
				Requests float64 `json:"requests"`
			} `json:"last_minute"`
		}
		if p.get(t, "/admin/v1/analytics/realtime", &rt) == 200 && rt.LastMinute.Requests < 100 {
			t.Errorf("realtime: %v requests in the last minute", rt.LastMinute.Requests)
		}
	} else {
		t.Logf("GET /admin/v1/analytics/top: %d; counting routes in /metrics", status)
		resp, err := http.Get(p.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		line := regexp.MustCompile(`(?m)^apiwarden_decisions_total\{[^}]*route="([^"]*)"[^}]*\} (\S+)$`)
		for _, m := range line.FindAllStringSubmatch(string(body), -1) {
			var v float64
			fmt.Sscan(m[2], &v)
			routes[m[1]] += v
		}
	}
	total := 0.0
	for _, n := range routes {
		total += n
	}
	t.Logf("requests by route: %v", routes)
	if len(routes) < 5 || total < 300 {
		t.Errorf("%v requests on %d routes after 20 s, want several routes and hundreds of requests", total, len(routes))
	}
	for _, want := range []string{"/api/guests/*", "/api/photos/upload"} {
		if routes[want] == 0 {
			t.Errorf("no traffic on %s", want)
		}
	}

	// Ctrl-C: a clean exit that removes the temporary data directory.
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("demo exit after SIGINT: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30 s of SIGINT")
	}
	if !strings.Contains(p.stdout.String(), "Demo stopped") {
		t.Errorf("no goodbye in the output")
	}
	if _, err := os.Stat(p.dataDir); !os.IsNotExist(err) {
		t.Errorf("temporary data directory %s still there: %v", p.dataDir, err)
	}
}

// Bad flags are usage errors (exit status 2) that say what is wrong.
func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "-backfill-days", "-1"},
		{"demo", "-backfill-days", "91"},
		{"demo", "-rate", "0"},
		{"demo", "extra"},
	} {
		var stdout, stderr strings.Builder
		if code := run(t.Context(), args, &stdout, &stderr, func(string) string { return "" }); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d; %s", args, code, cli.ExitUsage, stderr.String())
		}
		if !strings.Contains(stderr.String(), "apiwarden:") {
			t.Errorf("%v: %q", args, stderr.String())
		}
	}
}
