package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/internal/pgtest"
)

// pg is this package's PostgreSQL server, started by the first cluster
// test. Cluster tests stop and start it, so none of them runs in parallel.
var pg pgtest.Server

func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }

// startClusterApp starts an instance of a cluster on its own data dir
// (dataDir "" for a fresh one) and the shared database url; more changes
// the config further.
func startClusterApp(t *testing.T, url, id, dataDir string, more ...func(*config.Config)) (*app.App, func()) {
	t.Helper()
	return startApp(t, func(c *config.Config) {
		for _, change := range more {
			defer change(c)
		}
		c.Cluster.PostgresURL = config.Secret(url)
		c.Cluster.InstanceID = id
		if dataDir != "" {
			c.Server.DataDir = dataDir
		}
		// Tests poll keys many times a second.
		c.Tiers["enterprise"] = config.Tier{RequestsPerHour: 1_000_000, BurstPerMinute: 100_000}
	})
}

// adminCall sends an admin API request and returns the status and body.
func adminCall(t *testing.T, a *app.App, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+a.AdminAddr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func createKey(t *testing.T, a *app.App) edgetest.Key {
	t.Helper()
	return edgetest.CreateKey(t, nil, "http://"+a.AdminAddr(), "tok", `{"name":"shared","owner_id":"org_1","tier":"enterprise"}`)
}

// checkKey asks /v1/check whether secret may call GET /x: the decision
// code, "VALID" when it may.
func checkKey(t *testing.T, a *app.App, secret string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": secret, "method": "GET", "path": "/x", "ip": "192.0.2.1"})
	resp, err := http.Post("http://"+a.Addr()+"/v1/check", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Allowed bool   `json:"allowed"`
		Code    string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	return answer.Code
}

// eventually polls until checkKey answers want, failing after d.
func eventually(t *testing.T, d time.Duration, a *app.App, secret, want, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := checkKey(t, a, secret)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after %s, want %s", what, got, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readyz returns /readyz's status field.
func readyz(t *testing.T, a *app.App) string {
	t.Helper()
	resp, err := http.Get("http://" + a.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
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

func waitReadyz(t *testing.T, d time.Duration, want string, apps ...*app.App) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, a := range apps {
		for readyz(t, a) != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz on %s is %q, want %q within %s", a.AdminAddr(), readyz(t, a), want, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// clusterStoreUp reads apiwarden_cluster_store_up from /metrics.
func clusterStoreUp(t *testing.T, a *app.App) string {
	t.Helper()
	return metricValue(t, a, "apiwarden_cluster_store_up")
}

// metricValue reads the value of an unlabelled series from a's /metrics,
// "missing" when there is none.
func metricValue(t *testing.T, a *app.App, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + a.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return "missing"
}

// A key created on A passes on B within a second; a zero-grace rotation
// on B ends the old secret on A within a second; a revoke on B is refused
// on A within a second.
func TestClusterKeysPropagateBetweenInstances(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "")
	b, _ := startClusterApp(t, url, "b", "")
	waitReadyz(t, 10*time.Second, "ready", a, b)

	k := createKey(t, a)
	if got := checkKey(t, a, k.Secret); got != "VALID" {
		t.Fatalf("on the instance that made it: %s", got)
	}
	eventually(t, time.Second, b, k.Secret, "VALID", "created on A, on B")

	status, body := adminCall(t, b, "POST", "/admin/v1/keys/"+k.Key.ID+"/rotate", `{"grace_period":"0s"}`)
	var rotated edgetest.Key
	if status != http.StatusOK || json.Unmarshal(body, &rotated) != nil || rotated.Secret == "" {
		t.Fatalf("rotate on B: %d %s", status, body)
	}
	eventually(t, time.Second, a, k.Secret, "NOT_FOUND", "rotated on B without grace, old secret on A")
	eventually(t, time.Second, a, rotated.Secret, "VALID", "rotated on B, new secret on A")

	if status, body := adminCall(t, b, "DELETE", "/admin/v1/keys/"+k.Key.ID, ""); status != http.StatusOK {
		t.Fatalf("revoke on B: %d %s", status, body)
	}
	eventually(t, time.Second, a, rotated.Secret, "REVOKED", "revoked on B, on A")

	// Both mirrors hold the whole audit trail.
	for name, in := range map[string]*app.App{"A": a, "B": b} {
		status, body := adminCall(t, in, "GET", "/admin/v1/keys/"+k.Key.ID+"/events", "")
		if status != http.StatusOK || strings.Count(string(body), `"type"`) != 3 {
			t.Fatalf("%s: events %d %s, want created, rotated, revoked", name, status, body)
		}
	}
}

// GET /admin/v1/cluster on either instance lists both, with this build's
// version and mirrors that caught up; a single instance says it is alone.
func TestClusterListsInstances(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "pod-a", "")
	b, _ := startClusterApp(t, url, "pod-b", "")
	waitReadyz(t, 10*time.Second, "ready", a, b)
	createKey(t, a)

	type answer struct {
		Cluster   bool `json:"cluster"`
		Instances []struct {
			ID            string    `json:"id"`
			LastHeartbeat time.Time `json:"last_heartbeat"`
			MirrorSeq     int64     `json:"mirror_seq"`
			MirrorLag     int64     `json:"mirror_lag"`
		} `json:"instances"`
	}
	var got answer
	// Each instance beats at start and every 5 s; the lag is 0 once B's
	// beat follows its mirror's catching up with A's key.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		status, body := adminCall(t, b, "GET", "/admin/v1/cluster", "")
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			t.Fatalf("cluster: %d %s", status, body)
		}
		caughtUp := len(got.Instances) == 2
		for _, in := range got.Instances {
			caughtUp = caughtUp && in.MirrorSeq == 1 && in.MirrorLag == 0
		}
		if caughtUp || time.Now().After(deadline) {
			break
		}
	}
	if !got.Cluster || len(got.Instances) != 2 || got.Instances[0].ID != "pod-a" || got.Instances[1].ID != "pod-b" {
		t.Fatalf("cluster answer %+v, want pod-a and pod-b", got)
	}
	for _, in := range got.Instances {
		if in.MirrorSeq != 1 || in.MirrorLag != 0 || time.Since(in.LastHeartbeat) > time.Minute {
			t.Errorf("%s: mirror at %d, lag %d, last beat %v", in.ID, in.MirrorSeq, in.MirrorLag, in.LastHeartbeat)
		}
	}

	single, _ := startApp(t, nil)
	status, body := adminCall(t, single, "GET", "/admin/v1/cluster", "")
	if status != http.StatusOK || string(body) != `{"cluster":false,"instances":[],"leaders":[]}`+"\n" {
		t.Fatalf("single instance: %d %s", status, body)
	}
}

// alertLeader is who holds the alert duty as GET /admin/v1/cluster on a
// says, or "" when nobody does.
func alertLeader(t *testing.T, a *app.App) string {
	t.Helper()
	var got struct {
		Leaders []struct {
			Name, Holder string
		} `json:"leaders"`
	}
	status, body := adminCall(t, a, "GET", "/admin/v1/cluster", "")
	if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
		t.Fatalf("cluster: %d %s", status, body)
	}
	for _, l := range got.Leaders {
		if l.Name == app.AlertsDuty {
			return l.Holder
		}
	}
	return ""
}

// One of two instances leads alert evaluation; when it shuts down it
// resigns and the other takes the duty at once.
func TestClusterElectsOneAlertLeader(t *testing.T) {
	url := pg.Database(t)
	a, stopA := startClusterApp(t, url, "pod-a", "")
	waitReadyz(t, 10*time.Second, "ready", a)
	for deadline := time.Now().Add(10 * time.Second); alertLeader(t, a) != "pod-a"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pod-a, alone, does not lead: %q", alertLeader(t, a))
		}
	}
	b, _ := startClusterApp(t, url, "pod-b", "")
	waitReadyz(t, 10*time.Second, "ready", b)
	if got := alertLeader(t, b); got != "pod-a" {
		t.Fatalf("after pod-b joined the leader is %q; want pod-a still", got)
	}
	began := time.Now()
	stopA()
	// The lease (half the 10 s evaluation interval) would keep pod-b
	// waiting up to 5 s; the resignation hands the duty on at once.
	for deadline := time.Now().Add(4 * time.Second); alertLeader(t, b) != "pod-b"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pod-b did not take the duty after pod-a resigned: leader %q", alertLeader(t, b))
		}
	}
	t.Logf("handover on shutdown: %v", time.Since(began))
}

// A dashboard login made on A works on B, changes through B need the
// CSRF token A gave, and a logout on B ends the session on A too.
func TestClusterSharesDashboardSessions(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "")
	b, _ := startClusterApp(t, url, "b", "")
	waitReadyz(t, 10*time.Second, "ready", a, b)

	session := func(in *app.App, method, path, cookie, csrf, body string) (int, []byte, []*http.Cookie) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+in.AdminAddr()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			req.Header.Set("Cookie", admin.SessionCookie+"="+cookie)
		}
		if csrf != "" {
			req.Header.Set(admin.CSRFHeader, csrf)
		}
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out, resp.Cookies()
	}
	status, body, cookies := session(a, "POST", "/admin/v1/session", "", "", `{"token":"tok"}`)
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &login) != nil || len(cookies) == 0 {
		t.Fatalf("login on A: %d %s", status, body)
	}
	cookie := cookies[0].Value

	if status, body, _ := session(b, "GET", "/admin/v1/keys", cookie, "", ""); status != http.StatusOK {
		t.Fatalf("A's session on B: %d %s", status, body)
	}
	if status, _, _ := session(b, "POST", "/admin/v1/keys", cookie, "", `{"name":"x"}`); status != http.StatusForbidden {
		t.Fatalf("a change on B without the CSRF token: %d, want 403", status)
	}
	if status, body, _ := session(b, "POST", "/admin/v1/keys", cookie, login.CSRF, `{"name":"x"}`); status != http.StatusCreated {
		t.Fatalf("a change on B with A's CSRF token: %d %s", status, body)
	}
	if status, body, _ := session(b, "POST", "/admin/v1/session/logout", cookie, login.CSRF, ""); status != http.StatusNoContent {
		t.Fatalf("logout on B: %d %s", status, body)
	}
	if status, _, _ := session(a, "GET", "/admin/v1/keys", cookie, "", ""); status != http.StatusUnauthorized {
		t.Fatalf("the session on A after logout on B: %d, want 401", status)
	}
}

// PostgreSQL stopped: known keys still pass on both instances, admin
// writes answer 503 UNAVAILABLE, /readyz says degraded and the gauge says
// down. Started again, without restarting the apps: writes work and the
// mirrors converge.
func TestClusterSurvivesPostgresDown(t *testing.T) {
	url := pg.Database(t)
	a, _ := startClusterApp(t, url, "a", "")
	b, _ := startClusterApp(t, url, "b", "")
	waitReadyz(t, 10*time.Second, "ready", a, b)
	known := createKey(t, a)
	eventually(t, time.Second, b, known.Secret, "VALID", "known key on B")
	if got := clusterStoreUp(t, a); got != "1" {
		t.Fatalf("apiwarden_cluster_store_up %s while up, want 1", got)
	}

	startPostgres := pg.StopForTest(t)
	waitReadyz(t, 10*time.Second, "degraded", a, b)
	for name, in := range map[string]*app.App{"A": a, "B": b} {
		if got := checkKey(t, in, known.Secret); got != "VALID" {
			t.Fatalf("%s: a known key with PostgreSQL down: %s", name, got)
		}
		if got := clusterStoreUp(t, in); got != "0" {
			t.Fatalf("%s: apiwarden_cluster_store_up %s while down, want 0", name, got)
		}
	}
	status, body := adminCall(t, a, "POST", "/admin/v1/keys", `{"name":"refused","tier":"enterprise"}`)
	var e struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if status != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "UNAVAILABLE" || e.Error.RequestID == "" {
		t.Fatalf("create with PostgreSQL down: %d %s, want 503 UNAVAILABLE", status, body)
	}
	if status, body := adminCall(t, b, "DELETE", "/admin/v1/keys/"+known.Key.ID, ""); status != http.StatusServiceUnavailable {
		t.Fatalf("revoke with PostgreSQL down: %d %s, want 503", status, body)
	}

	startPostgres()
	waitReadyz(t, 15*time.Second, "ready", a, b)
	fresh := createKey(t, b)
	eventually(t, time.Second, a, fresh.Secret, "VALID", "created on B after the restart, on A")
	if status, body := adminCall(t, a, "DELETE", "/admin/v1/keys/"+known.Key.ID, ""); status != http.StatusOK {
		t.Fatalf("revoke after the restart: %d %s", status, body)
	}
	eventually(t, time.Second, b, known.Secret, "REVOKED", "revoked on A after the restart, on B")
}

// An instance that starts while PostgreSQL is down serves the keys its
// mirror has, and catches up with what it missed once PostgreSQL returns.
func TestClusterInstanceStartsWhilePostgresDown(t *testing.T) {
	url := pg.Database(t)
	dir := t.TempDir()
	first, stopFirst := startClusterApp(t, url, "a", dir)
	waitReadyz(t, 10*time.Second, "ready", first)
	known := createKey(t, first)
	stopFirst()

	startPostgres := pg.StopForTest(t)
	a, _ := startClusterApp(t, url, "a", dir)
	if got := readyz(t, a); got != "degraded" {
		t.Fatalf("/readyz of an instance started with PostgreSQL down: %q, want degraded", got)
	}
	if got := checkKey(t, a, known.Secret); got != "VALID" {
		t.Fatalf("a mirrored key with PostgreSQL down since start: %s", got)
	}

	startPostgres()
	b, _ := startClusterApp(t, url, "b", "")
	waitReadyz(t, 15*time.Second, "ready", a, b)
	missed := createKey(t, b)
	eventually(t, time.Second, a, missed.Secret, "VALID", "created on B after A started without PostgreSQL, on A")
}
