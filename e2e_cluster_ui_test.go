package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/pgtest"
)

// The dashboard's instance panel in Chromium against a real cluster: two
// instances sharing a throwaway PostgreSQL. The overview on one lists
// both with their version and which holds the alerts duty; once the other
// stops, its heartbeat goes stale and the panel marks it so, while the
// live one stays unmarked and holds the duty. A single instance says it
// is alone.
func TestDashboardInstancesPanel(t *testing.T) {
	browser := findChromium(t)
	if testing.Short() {
		t.Skip("drives a browser; not in -short")
	}
	var pg pgtest.Server
	t.Cleanup(pg.Close)
	url := pg.Database(t)
	member := func(id string) func(*config.Config) {
		return func(c *config.Config) {
			c.Cluster.PostgresURL = config.Secret(url)
			c.Cluster.InstanceID = id
		}
	}
	a, _ := startDashboardAppWith(t, member("pod-a"))
	_, stopB := startDashboardAppWith(t, member("pod-b"))

	b := startBrowser(t, browser, a)
	b.run("open the dashboard on pod-a", chromedp.Navigate(a.admin+"/ui/"))
	b.login()
	b.waitJS("both instances listed", 20*time.Second, `(() => {
		const rows = [...document.querySelectorAll('#instances tbody tr')].map((r) => r.dataset.instance);
		return rows.length === 2 && rows.includes('pod-a') && rows.includes('pod-b');
	})()`)
	for _, id := range []string{"pod-a", "pod-b"} {
		row := b.text(`#instances tr[data-instance="` + id + `"]`)
		if !strings.Contains(row, id) || !strings.Contains(row, "e2e") || strings.Contains(row, "stale") {
			t.Errorf("%s's row reads %q, want its id, version e2e and no stale mark", id, row)
		}
	}
	if got := b.text(`[data-testid="instances-summary"]`); !strings.HasPrefix(got, "2 of 2 instances beating") {
		t.Errorf("summary %q, want 2 of 2 beating", got)
	}
	// One of them holds the alerts duty (a lease of half the 1 s
	// evaluation interval), and the panel says which.
	b.waitJS("one alerts leader", 20*time.Second,
		`document.querySelectorAll('#instances tbody [data-duty="alerts"]').length === 1`)
	b.shot("instances-two")

	// pod-b's last beat falls behind pod-a's, which goes on every 5 s:
	// stale once it is three beats behind.
	stopB()
	b.waitJS("pod-b marked stale", 60*time.Second,
		`document.querySelector('#instances tr[data-instance="pod-b"]')?.dataset.stale === 'true'`)
	if row := b.text(`#instances tr[data-instance="pod-a"]`); strings.Contains(row, "stale") {
		t.Errorf("the live instance is marked: %q", row)
	}
	b.waitJS("pod-a holds the alerts duty", 20*time.Second, `(() => {
		const holders = [...document.querySelectorAll('#instances tbody [data-duty="alerts"]')].map((e) => e.closest('tr').dataset.instance);
		return holders.length === 1 && holders[0] === 'pod-a';
	})()`)
	if got := b.text(`[data-testid="instances-summary"]`); !strings.HasPrefix(got, "1 of 2 instances beating") {
		t.Errorf("summary %q, want 1 of 2 beating", got)
	}
	b.shot("instances-one-stale")
	b.checkProblems()

	single := startDashboardApp(t)
	b.run("open a single instance's dashboard", chromedp.Navigate(single.admin+"/ui/"))
	b.login()
	b.run("see that it runs alone", chromedp.WaitVisible(chromedp.CSS(`#instances [data-testid="single-instance"]`)))
	if n := eval[int](b, `document.querySelectorAll('#instances tbody tr').length`); n != 0 {
		t.Errorf("a single instance lists %d instances", n)
	}
	b.checkProblems()
}

// waitJS evaluates the expression js until it is true, failing after d.
func (b *browserSession) waitJS(what string, d time.Duration, js string) {
	b.t.Helper()
	for deadline := time.Now().Add(d); !eval[bool](b, js); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("%s: not within %s", what, d)
		}
	}
}
