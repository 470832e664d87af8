package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/internal/pgtest"
	"github.com/apiwarden/apiwarden/internal/redistest"
)

// pg is this package's PostgreSQL server, started by the first cluster
// test. Some cluster tests stop and start it, so none runs in parallel.
var pg pgtest.Server

func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }

// Two processes sharing PostgreSQL and Redis: a key created on A passes
// on B, a revoke on B is refused on A, a rotation without grace on A
// refuses the old secret on B and accepts the new one there, a tier set
// on B is in force on A, and after a rotation with grace on B both
// secrets pass on A. The goal is a second each; the deadline is 10 s and
// the log shows the real figure.
func TestClusterProcessesShareKeys(t *testing.T) {
	a, b := startPair(t, true)

	k := a.createKey(t, "polled")
	b.waitCode(t, k.Secret, "VALID", "created on A")

	if status, body := b.adminCall(t, "DELETE", "/admin/v1/keys/"+k.Key.ID, ""); status != http.StatusOK {
		t.Fatalf("revoke on B: %d %s", status, body)
	}
	a.waitCode(t, k.Secret, "REVOKED", "revoked on B")

	k2 := a.createKey(t, "polled")
	b.waitCode(t, k2.Secret, "VALID", "second key created on A")
	status, body := a.adminCall(t, "POST", "/admin/v1/keys/"+k2.Key.ID+"/rotate", `{"grace_period":"0s"}`)
	var rotated edgetest.Key
	if status != http.StatusOK || json.Unmarshal(body, &rotated) != nil || rotated.Secret == "" {
		t.Fatalf("rotate on A: %d %s", status, body)
	}
	b.waitCode(t, k2.Secret, "NOT_FOUND", "old secret after a rotation without grace on A")
	b.waitCode(t, rotated.Secret, "VALID", "new secret after a rotation on A")

	if status, body := b.adminCall(t, "PATCH", "/admin/v1/keys/"+k2.Key.ID, `{"tier":"enterprise"}`); status != http.StatusOK {
		t.Fatalf("update on B: %d %s", status, body)
	}
	took := edgetest.Poll(t, 10*time.Second, "the tier set on B to be in force on A", func() bool { return a.mustCheck(t, rotated.Secret).Tier == "enterprise" })
	t.Logf("tier updated on B: in force on a after %s", took.Round(time.Millisecond))

	status, body = b.adminCall(t, "POST", "/admin/v1/keys/"+k2.Key.ID+"/rotate", `{"grace_period":"1h"}`)
	var graced edgetest.Key
	if status != http.StatusOK || json.Unmarshal(body, &graced) != nil || graced.Secret == "" {
		t.Fatalf("rotate with grace on B: %d %s", status, body)
	}
	a.waitCode(t, graced.Secret, "VALID", "new secret after a rotation with grace on B")
	if got := a.mustCheck(t, rotated.Secret).Code; got != "VALID" {
		t.Fatalf("the previous secret on A within the grace period of a rotation on B: %s", got)
	}
}

// A burst of 20 shared by two processes through Redis: 60 checks of one
// key, sent at once and split between A and B, admit exactly 20 in all.
// Without [redis] each process has its own buckets and admits 20 itself
// (39 or 40 in all), which is how this test was seen to fail.
func TestClusterProcessesShareBurst(t *testing.T) {
	a, b := startPair(t, true)

	k := a.createKey(t, "burst20")
	// Until B's mirror has the key its checks answer NOT_FOUND and take
	// nothing; the first VALID takes the first of the 20 tokens.
	b.waitCode(t, k.Secret, "VALID", "burst key created on A")

	const requests = 60
	codes := make(chan string, requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range requests {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answer, err := node.check(k.Secret)
			if err != nil {
				answer.Code = "error: " + err.Error()
			}
			codes <- answer.Code
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	close(codes)
	t.Logf("%d concurrent checks on two processes answered in %s", requests, time.Since(began).Round(time.Millisecond))

	counts := map[string]int{}
	for c := range codes {
		counts[c]++
	}
	admitted := 1 + counts["VALID"] // with B's first check
	if admitted != 20 || counts["RATE_LIMITED"] != requests-counts["VALID"] {
		t.Fatalf("admitted %d in all (answers %v), want exactly 20 and the rest RATE_LIMITED", admitted, counts)
	}
}

// A dashboard session made on A works on B, and a logout on B ends it on
// A: sessions live in PostgreSQL, not in either process.
func TestClusterProcessesShareSessions(t *testing.T) {
	a, b := startPair(t, false)

	status, body, cookies := a.request(t, "POST", "/admin/v1/session", `{"token":"`+clusterAdminToken+`"}`, nil)
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &login) != nil || len(cookies) == 0 {
		t.Fatalf("login on A: %d %s", status, body)
	}
	session := http.Header{"Cookie": {admin.SessionCookie + "=" + cookies[0].Value}}
	if status, body, _ := b.request(t, "GET", "/admin/v1/keys", "", session); status != http.StatusOK {
		t.Fatalf("A's session on B: %d %s", status, body)
	}
	logout := session.Clone()
	logout.Set(admin.CSRFHeader, login.CSRF)
	if status, body, _ := b.request(t, "POST", "/admin/v1/session/logout", "", logout); status != http.StatusNoContent {
		t.Fatalf("logout on B: %d %s", status, body)
	}
	if status, body, _ := a.request(t, "GET", "/admin/v1/keys", "", session); status != http.StatusUnauthorized {
		t.Fatalf("the session on A after a logout on B: %d %s, want 401", status, body)
	}
}

// PostgreSQL stopped under traffic, the processes running: a known key
// keeps passing on both, admin writes answer 503 UNAVAILABLE and /readyz
// says degraded. Started again, without restarting either process: writes
// work on both and B's mirror gets a key created on A.
func TestClusterProcessesSurvivePostgresDown(t *testing.T) {
	a, b := startPair(t, true)
	known := a.createKey(t, "polled")
	b.waitCode(t, known.Secret, "VALID", "known key created on A")

	stopTraffic := checkUntilStopped(known.Secret, a, b)
	startPostgres := pg.StopForTest(t)
	for _, n := range []*clusterNode{a, b} {
		took := edgetest.Poll(t, 10*time.Second, "/readyz degraded on "+n.name, func() bool { return n.readyz(t) == "degraded" })
		t.Logf("%s degraded %s after PostgreSQL stopped", n.name, took.Round(time.Millisecond))
	}
	for _, n := range []*clusterNode{a, b} {
		status, body := n.adminCall(t, "POST", "/admin/v1/keys", `{"name":"refused","tier":"polled"}`)
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if status != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "UNAVAILABLE" {
			t.Fatalf("create on %s with PostgreSQL down: %d %s, want 503 UNAVAILABLE", n.name, status, body)
		}
		if status, body := n.adminCall(t, "DELETE", "/admin/v1/keys/"+known.Key.ID, ""); status != http.StatusServiceUnavailable {
			t.Fatalf("revoke on %s with PostgreSQL down: %d %s, want 503", n.name, status, body)
		}
	}
	during := stopTraffic()
	t.Logf("checks of the known key while PostgreSQL went down: %v", during)
	for _, n := range []*clusterNode{a, b} {
		if got := during[n.name]; len(got) != 1 || got["VALID"] == 0 {
			t.Fatalf("checks of a known key on %s while PostgreSQL went down: %v, want only VALID", n.name, got)
		}
		// And with PostgreSQL down for certain, not only before.
		for i := range 50 {
			if got := n.mustCheck(t, known.Secret).Code; got != "VALID" {
				t.Fatalf("check %d of a known key on %s with PostgreSQL down: %s", i, n.name, got)
			}
		}
	}

	startPostgres()
	for _, n := range []*clusterNode{a, b} {
		took := edgetest.Poll(t, 20*time.Second, "/readyz ready on "+n.name, func() bool { return n.readyz(t) == "ready" })
		t.Logf("%s ready %s after PostgreSQL started", n.name, took.Round(time.Millisecond))
	}
	fresh := a.createKey(t, "polled")
	b.waitCode(t, fresh.Secret, "VALID", "created on A after PostgreSQL returned")
	if status, body := b.adminCall(t, "DELETE", "/admin/v1/keys/"+known.Key.ID, ""); status != http.StatusOK {
		t.Fatalf("revoke on B after PostgreSQL returned: %d %s", status, body)
	}
	a.waitCode(t, known.Secret, "REVOKED", "revoked on B after PostgreSQL returned")
}

// A node SIGKILLed and started again on its data directory while
// PostgreSQL is down serves the keys its mirror has, says degraded and
// stops cleanly on SIGTERM; once PostgreSQL returns it catches up with
// the key created while it was dead, without another restart.
func TestClusterProcessRestartsWhilePostgresDown(t *testing.T) {
	a, b := startPair(t, false)
	known := a.createKey(t, "polled")
	b.waitCode(t, known.Secret, "VALID", "known key created on A")
	var exit *exec.ExitError
	if err := b.signal(t, syscall.SIGKILL); !errors.As(err, &exit) {
		t.Fatalf("B did not die of SIGKILL: %v", err)
	}
	missed := a.createKey(t, "polled")

	startPostgres := pg.StopForTest(t)
	began := time.Now()
	b.restart(t)
	t.Logf("B answered /readyz %s after a start with PostgreSQL down", time.Since(began).Round(time.Millisecond))
	if got := b.readyz(t); got != "degraded" {
		t.Fatalf("/readyz of B started with PostgreSQL down: %q, want degraded", got)
	}
	if got := b.mustCheck(t, known.Secret).Code; got != "VALID" {
		t.Fatalf("a mirrored key on B started with PostgreSQL down: %s", got)
	}
	if got := b.mustCheck(t, missed.Secret).Code; got != "NOT_FOUND" {
		t.Fatalf("a key B's mirror never had, with PostgreSQL down: %s, want NOT_FOUND", got)
	}
	// A rolling upgrade may stop a pod while PostgreSQL is away: the
	// listener's reconnect loop must not hold up a clean exit.
	if err := b.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("B's exit on SIGTERM with PostgreSQL down: %v", err)
	}
	b.restart(t)

	startPostgres()
	b.waitCode(t, missed.Secret, "VALID", "created on A while B was dead, after PostgreSQL returned")
	edgetest.Poll(t, 20*time.Second, "/readyz ready on B", func() bool { return b.readyz(t) == "ready" })
}

// startPair starts nodes a and b on a new database of the package's
// PostgreSQL, sharing a new redis-server when withRedis is set.
func startPair(t *testing.T, withRedis bool) (a, b *clusterNode) {
	t.Helper()
	url, redisAddr := pg.Database(t), ""
	if withRedis {
		redisAddr = redistest.Start(t).Addr()
	}
	return startNode(t, "a", url, redisAddr), startNode(t, "b", url, redisAddr)
}

// checkUntilStopped checks secret on every node in a loop, one goroutine
// per node, until the returned stop is called; stop returns, per node,
// how many checks got each answer (transport errors as "error: …").
func checkUntilStopped(secret string, nodes ...*clusterNode) (stop func() map[string]map[string]int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	counts := make([]map[string]int, len(nodes))
	for i, n := range nodes {
		counts[i] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				answer, err := n.check(secret)
				if err != nil {
					answer.Code = "error: " + strings.SplitN(err.Error(), "\n", 2)[0]
				}
				counts[i][answer.Code]++
			}
		}()
	}
	return func() map[string]map[string]int {
		close(done)
		wg.Wait()
		out := map[string]map[string]int{}
		for i, n := range nodes {
			out[n.name] = counts[i]
		}
		return out
	}
}
