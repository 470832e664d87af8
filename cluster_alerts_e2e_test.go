package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// webhookRecorder is the outside world's alert receiver: it counts the
// alerts it was told of, by status.
type webhookRecorder struct {
	mu     sync.Mutex
	status map[string]int
}

func (h *webhookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg alerting.WebhookMessage
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range msg.Alerts {
		h.status[a.Status]++
	}
}

func (h *webhookRecorder) count(status string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status[status]
}

// alertLeader is who holds the alerts duty as n's GET /admin/v1/cluster
// says, or "" when nobody does.
func (n *clusterNode) alertLeader(t *testing.T) string {
	t.Helper()
	var got struct {
		Leaders []struct{ Name, Holder string } `json:"leaders"`
	}
	status, body := n.adminCall(t, "GET", "/admin/v1/cluster", "")
	if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
		t.Fatalf("node %s: cluster: %d %s", n.name, status, body)
	}
	for _, l := range got.Leaders {
		if l.Name == "alerts" {
			return l.Holder
		}
	}
	return ""
}

// evaluations is apiwarden_alert_evaluations_total on n's /metrics: the
// passes n made while it led.
func (n *clusterNode) evaluations(t *testing.T) int {
	t.Helper()
	resp, err := n.client.Get("http://" + n.adminAddr + "/metrics")
	if err != nil {
		t.Fatalf("node %s: /metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "apiwarden_alert_evaluations_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("node %s: evaluations %q", n.name, v)
			}
			return int(f)
		}
	}
	t.Fatalf("node %s: /metrics has no apiwarden_alert_evaluations_total", n.name)
	return 0
}

// nodeAlerts lists the alerts n's admin API shows.
func (n *clusterNode) nodeAlerts(t *testing.T) []alerting.Alert {
	t.Helper()
	var l struct {
		Alerts []alerting.Alert `json:"alerts"`
	}
	status, body := n.adminCall(t, "GET", "/admin/v1/alerts", "")
	if status != http.StatusOK || json.Unmarshal(body, &l) != nil {
		t.Fatalf("node %s: alerts: %d %s", n.name, status, body)
	}
	return l.Alerts
}

// alertingConfig evaluates one quota rule every second and announces to
// hook: a key past 80% of its hourly bucket on the evaluating node fires.
func alertingConfig(hook string) string {
	return fmt.Sprintf(`
[alerts]
evaluation_interval = "1s"

[[alerts.rules]]
name = "quota"
type = "quota_warning"
subject = "key"
threshold = 0.8
severity = "high"

[[alerts.notify]]
type = "webhook"
url = %q
`, hook)
}

// The leader of alert evaluation SIGKILLed: the other node evaluates
// within two evaluation intervals of the kill (the lease is half an
// interval), carries on with the same, acknowledged alert, and the
// receiver hears of it once.
func TestClusterAlertLeaderKilled(t *testing.T) {
	hook := &webhookRecorder{status: map[string]int{}}
	receiver := httptest.NewServer(hook)
	t.Cleanup(receiver.Close)
	url := pg.Database(t)
	nodes := map[string]*clusterNode{}
	for _, name := range []string{"pod-a", "pod-b"} {
		nodes[name] = startNodeWith(t, name, url, "", alertingConfig(receiver.URL))
	}
	var leaderName string
	edgetest.Poll(t, 15*time.Second, "an alerts leader", func() bool {
		leaderName = nodes["pod-a"].alertLeader(t)
		return leaderName != ""
	})
	leader, follower := nodes["pod-a"], nodes["pod-b"]
	if leaderName == "pod-b" {
		leader, follower = follower, leader
	}

	// Each node keeps its own buckets here (no [redis]): 17 of 20 on both
	// puts the key past 80% whichever node evaluates.
	k := leader.createKey(t, "burst20")
	follower.waitCode(t, k.Secret, "VALID", "the new key")
	for _, n := range []*clusterNode{leader, follower} {
		for i := range 17 {
			if got := n.mustCheck(t, k.Secret).Code; got != "VALID" {
				t.Fatalf("check %d on %s: %s", i, n.name, got)
			}
		}
	}
	edgetest.Poll(t, 15*time.Second, "the quota alert announced", func() bool { return hook.count("firing") > 0 })
	alerts := follower.nodeAlerts(t)
	if len(alerts) != 1 || alerts[0].State != alerting.StateFiring {
		t.Fatalf("the follower lists %+v; want one firing alert", alerts)
	}
	id := alerts[0].ID
	if status, body := follower.adminCall(t, "POST", "/admin/v1/alerts/"+id+"/ack", `{"note":"on it"}`); status != http.StatusOK {
		t.Fatalf("ack on the follower: %d %s", status, body)
	}
	if got := leader.nodeAlerts(t); len(got) != 1 || got[0].Acknowledgement == nil || got[0].Acknowledgement.Note != "on it" {
		t.Fatalf("the leader lists %+v; want the follower's ack", got)
	}

	before := follower.evaluations(t)
	var exitErr *exec.ExitError
	if err := leader.signal(t, syscall.SIGKILL); !errors.As(err, &exitErr) {
		t.Fatalf("leader did not die of SIGKILL: %v", err)
	}
	failover := edgetest.Poll(t, 20*time.Second, "the follower evaluating", func() bool { return follower.evaluations(t) > before })
	t.Logf("failover: the follower evaluated %s after the leader's SIGKILL (goal: 2 intervals, 2s)", failover.Round(time.Millisecond))
	if got := follower.alertLeader(t); got != follower.name {
		t.Errorf("leader after the kill: %q; want %s", got, follower.name)
	}
	// A few passes on the new leader: still the one alert, acknowledged,
	// and no second announcement.
	edgetest.Poll(t, 20*time.Second, "three passes on the new leader", func() bool { return follower.evaluations(t) >= before+3 })
	got := follower.nodeAlerts(t)
	if len(got) != 1 || got[0].ID != id || got[0].Acknowledgement == nil {
		t.Fatalf("after the failover the new leader lists %+v; want alert %s, acknowledged", got, id)
	}
	if n := hook.count("firing"); n != 1 {
		t.Fatalf("the receiver heard of the alert %d times; want once", n)
	}
}
