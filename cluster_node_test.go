package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// The secrets every node of a test cluster shares: cluster mode needs one
// key secret on every instance, and admin tokens must be 24 characters.
const (
	clusterAdminToken = "cluster-e2e-admin-token-0123456789"
	clusterKeySecret  = "cluster-e2e-key-secret-0123456789"
)

// The tiers of a test cluster. "polled" is for keys a test checks many
// times a second. "burst20" admits 20 requests and then almost nothing:
// its hour bucket (20 an hour) refills one token every 3 minutes, so a
// count of admitted requests stays exact however slow the machine is,
// where the minute bucket alone would refill a token every 3 seconds.
const clusterTiers = `
[tiers.polled]
requests_per_hour = 1000000
burst_per_minute = 100000

[tiers.burst20]
requests_per_hour = 20
burst_per_minute = 20
`

// clusterNode is one `apiwarden serve` subprocess of a test cluster, with
// its own data directory, sharing a PostgreSQL database and (when given)
// a redis-server with the other nodes. Its methods fail the test on
// transport errors and are safe for concurrent use, except where they
// take t and are called off the test's goroutine.
type clusterNode struct {
	name string
	*process
	client  *http.Client
	cfgPath string
	env     []string
}

// startNode starts node name of the cluster on database pgURL, with
// [redis] pointing at redisAddr unless it is empty, and waits until it
// answers /readyz. The process is killed when t ends; its log is printed
// if t failed.
func startNode(t *testing.T, name, pgURL, redisAddr string) *clusterNode {
	t.Helper()
	return startNodeWith(t, name, pgURL, redisAddr, "")
}

// startNodeWith is startNode with extra TOML appended to the node's
// configuration.
func startNodeWith(t *testing.T, name, pgURL, redisAddr, extra string) *clusterNode {
	t.Helper()
	return startNodeOn(t, name, pgURL, redisAddr, "auto", extra)
}

// startNodeOn is startNodeWith with server.edge set to edge.
func startNodeOn(t *testing.T, name, pgURL, redisAddr, edge, extra string) *clusterNode {
	t.Helper()
	listen, admin := edgetest.FreeAddr(t), edgetest.FreeAddr(t)
	cfg := fmt.Sprintf(`
[server]
listen = %q
admin_listen = %q
data_dir = %q
shutdown_timeout = "5s"
edge = %q

[security]
admin_token = "env:APIWARDEN_ADMIN_TOKEN"
key_secret = "env:APIWARDEN_KEY_SECRET"

[routes_default]
preset = "protected"

[cluster]
postgres_url = %q
instance_id = %q
`, listen, admin, filepath.Join(t.TempDir(), "data"), edge, pgURL, name) + clusterTiers + extra
	if redisAddr != "" {
		// A generous timeout: on a loaded machine a slow Redis call would
		// otherwise fall back to this node's own buckets.
		cfg += fmt.Sprintf("\n[redis]\nurl = %q\ntimeout = \"2s\"\n", "redis://"+redisAddr+"/0")
	}
	path := filepath.Join(t.TempDir(), name+".toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &clusterNode{name: name, client: &http.Client{Timeout: 20 * time.Second}, cfgPath: path,
		env: []string{"APIWARDEN_ADMIN_TOKEN=" + clusterAdminToken, "APIWARDEN_KEY_SECRET=" + clusterKeySecret}}
	n.start(t, listen, admin)
	return n
}

// restart starts n's process again, after it exited, with the same
// configuration, addresses and data directory, and waits until it answers
// /readyz.
func (n *clusterNode) restart(t *testing.T) {
	t.Helper()
	n.start(t, n.listen, n.adminAddr)
}

func (n *clusterNode) start(t *testing.T, listen, admin string) {
	t.Helper()
	p := startProcess(t, buildBinary(t), n.cfgPath, listen, admin, n.env...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of node %s:\n%s", n.name, p.log.String())
		}
	})
	n.process = p
}

// adminCall sends an admin API request with the admin token and returns
// the status and body.
func (n *clusterNode) adminCall(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	status, out, _ := n.request(t, method, path, body, http.Header{"Authorization": {"Bearer " + clusterAdminToken}})
	return status, out
}

// request sends a request with header to n's admin listener and returns
// the status, the body and the cookies set.
func (n *clusterNode) request(t *testing.T, method, path, body string, header http.Header) (int, []byte, []*http.Cookie) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.adminAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("node %s: %s %s: %v", n.name, method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp.Cookies()
}

// createKey creates a key of tier through n's admin API.
func (n *clusterNode) createKey(t *testing.T, tier string) edgetest.Key {
	t.Helper()
	return edgetest.CreateKey(t, n.client, "http://"+n.adminAddr, clusterAdminToken, `{"name":"e2e","owner_id":"org_1","tier":"`+tier+`"}`)
}

// checkAnswer is what /v1/check says about a key.
type checkAnswer struct {
	Code string `json:"code"` // "VALID" when the request may pass
	Tier string `json:"tier"` // the key's tier, when the key is known
}

// check asks n's /v1/check whether secret may call GET /x. An allowed
// check takes a token.
func (n *clusterNode) check(secret string) (checkAnswer, error) {
	body, _ := json.Marshal(map[string]string{"key": secret, "method": "GET", "path": "/x", "ip": "192.0.2.1"})
	var answer checkAnswer
	resp, err := n.client.Post("http://"+n.listen+"/v1/check", "application/json", bytes.NewReader(body))
	if err != nil {
		return answer, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return answer, fmt.Errorf("node %s: /v1/check answered %s: %w", n.name, resp.Status, err)
	}
	return answer, nil
}

// mustCheck is check that fails the test on an error; call it on the
// test's goroutine.
func (n *clusterNode) mustCheck(t *testing.T, secret string) checkAnswer {
	t.Helper()
	answer, err := n.check(secret)
	if err != nil {
		t.Fatal(err)
	}
	return answer
}

// readyz returns the status field of n's /readyz ("ready", "degraded"),
// or the HTTP status when it is not 200.
func (n *clusterNode) readyz(t *testing.T) string {
	t.Helper()
	resp, err := n.client.Get("http://" + n.adminAddr + "/readyz")
	if err != nil {
		t.Fatalf("node %s: /readyz: %v", n.name, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return r.Status
}

// waitCode polls n's /v1/check with secret until it answers want and
// returns how long that took; it fails the test after 10 s.
func (n *clusterNode) waitCode(t *testing.T, secret, want, what string) time.Duration {
	t.Helper()
	took := edgetest.Poll(t, 10*time.Second, fmt.Sprintf("%s (%s on %s)", what, want, n.name), func() bool {
		return n.mustCheck(t, secret).Code == want
	})
	t.Logf("%s: %s on %s after %s", what, want, n.name, took.Round(time.Millisecond))
	return took
}
