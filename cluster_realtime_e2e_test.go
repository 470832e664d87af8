package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// spikeConfig evaluates one error_spike rule over the cluster every
// second: half or more of the last minute's requests answered 5xx, with
// at least 30 requests, fires at once and is announced to hook.
func spikeConfig(hook string) string {
	return fmt.Sprintf(`
[alerts]
evaluation_interval = "1s"

[[alerts.rules]]
name = "cluster-errors"
type = "error_spike"
subject = "global"
window = "1m"
threshold = 0.5
min_requests = 30
for = "0s"
severity = "high"

[[alerts.notify]]
type = "webhook"
url = %q
`, hook)
}

// spikeShare is one node's part of the spike: below the rule's
// min_requests (30) on its own, 36 requests on three nodes.
const spikeShare = 12

// sendErrors files n requests answered 500, stamped now, through n's
// /v1/events.
func (n *clusterNode) sendErrors(t *testing.T, count int) {
	t.Helper()
	var body strings.Builder
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range count {
		fmt.Fprintf(&body, `{"time":%q,"method":"GET","route":"/spike/%s","path":"/spike/%d","status":500,"latency_ms":3}`+"\n", now, n.name, i)
	}
	resp, err := n.client.Post("http://"+n.listen+"/v1/events", "application/x-ndjson", strings.NewReader(body.String()))
	if err != nil {
		t.Fatalf("node %s: /v1/events: %v", n.name, err)
	}
	defer resp.Body.Close()
	var got struct{ Accepted int }
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&got) != nil || got.Accepted != count {
		t.Fatalf("node %s: /v1/events: %s, %d of %d accepted", n.name, resp.Status, got.Accepted, count)
	}
}

// lastMinute is the last minute of a realtime answer: requests, 5xx
// answers and the top routes' requests by route.
type lastMinute struct {
	Requests  int `json:"requests"`
	Errors5xx int `json:"errors_5xx"`
	TopRoutes []struct {
		Route    string `json:"route"`
		Requests int    `json:"requests"`
	} `json:"top_routes"`
}

// routes returns the top routes' requests by route.
func (m lastMinute) routes() map[string]int {
	out := map[string]int{}
	for _, r := range m.TopRoutes {
		out[r.Route] = r.Requests
	}
	return out
}

// realtimeLastMinute is the last minute of n's
// GET /admin/v1/analytics/realtime.
func (n *clusterNode) realtimeLastMinute(t *testing.T) lastMinute {
	t.Helper()
	var snap struct {
		LastMinute lastMinute `json:"last_minute"`
	}
	status, body := n.adminCall(t, "GET", "/admin/v1/analytics/realtime", "")
	if status != http.StatusOK || json.Unmarshal(body, &snap) != nil {
		t.Fatalf("node %s: realtime: %d %s", n.name, status, body)
	}
	return snap.LastMinute
}

// streamLastMinute reads the first event of n's /admin/v1/stream and
// returns its last minute's requests.
func (n *clusterNode) streamLastMinute(t *testing.T) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.adminAddr+"/admin/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+clusterAdminToken)
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("node %s: stream: %v", n.name, err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		data, ok := strings.CutPrefix(lines.Text(), "data: ")
		if !ok {
			continue
		}
		var snap struct {
			LastMinute struct {
				Requests int `json:"requests"`
			} `json:"last_minute"`
		}
		if err := json.Unmarshal([]byte(data), &snap); err != nil {
			t.Fatalf("node %s: stream event %q: %v", n.name, data, err)
		}
		return snap.LastMinute.Requests
	}
	t.Fatalf("node %s: the stream ended without an event: %v", n.name, lines.Err())
	return 0
}

// An error spike spread over three instances, each share below the rule's
// min_requests alone, fires one alert on the leader, announced once; the
// realtime view and the stream of every instance show the requests sent
// to the others within the deadline (the goal: 2 s), and a view that
// counts another node's requests shows its route in the top routes too.
func TestClusterRealtimeErrorSpike(t *testing.T) {
	hook := &webhookRecorder{status: map[string]int{}}
	receiver := httptest.NewServer(hook)
	t.Cleanup(receiver.Close)
	url := pg.Database(t)
	var nodes []*clusterNode
	for _, name := range []string{"pod-a", "pod-b", "pod-c"} {
		nodes = append(nodes, startNodeWith(t, name, url, "", spikeConfig(receiver.URL)))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	edgetest.Poll(t, 15*time.Second, "an alerts leader", func() bool { return a.alertLeader(t) != "" })
	// Passes by whichever node leads: on a loaded machine the duty may
	// move between them.
	passes := func() int {
		sum := 0
		for _, n := range nodes {
			sum += n.evaluations(t)
		}
		return sum
	}

	// One share, on a: every node's realtime view shows it, the leader
	// evaluates it several times, and nothing fires: what a's share would
	// be on a node alone.
	sent := time.Now()
	a.sendErrors(t, spikeShare)
	for _, n := range nodes {
		var last lastMinute
		edgetest.Poll(t, 10*time.Second, "a's share on "+n.name, func() bool {
			last = n.realtimeLastMinute(t)
			return last.Requests == spikeShare
		})
		t.Logf("a's share in %s's realtime view %s after it was sent", n.name, time.Since(sent).Round(time.Millisecond))
		if got := last.routes(); got["/spike/pod-a"] != spikeShare {
			t.Errorf("%s counts a's %d requests, but its top routes are %v", n.name, spikeShare, got)
		}
	}
	before := passes()
	edgetest.Poll(t, 20*time.Second, "three passes over one share", func() bool { return passes() >= before+3 })
	if got := hook.count("firing"); got != 0 {
		t.Fatalf("one share (%d requests, below min_requests 30) fired %d times", spikeShare, got)
	}
	if got := a.nodeAlerts(t); len(got) != 0 {
		t.Fatalf("one share raised alerts: %+v", got)
	}

	// The rest of the spike, on b and c: a sees it within the deadline,
	// and the leader fires once.
	sent = time.Now()
	b.sendErrors(t, spikeShare)
	c.sendErrors(t, spikeShare)
	var last lastMinute
	merged := edgetest.Poll(t, 10*time.Second, "b's and c's shares on a", func() bool {
		last = a.realtimeLastMinute(t)
		return last.Requests == 3*spikeShare && last.Errors5xx == 3*spikeShare
	})
	t.Logf("merge delay: b's and c's requests in a's realtime view %s after they were sent (goal: 2s)", merged.Round(time.Millisecond))
	if got := last.routes(); got["/spike/pod-b"] != spikeShare || got["/spike/pod-c"] != spikeShare {
		t.Errorf("a counts b's and c's requests, but its top routes are %v", got)
	}
	if got := a.streamLastMinute(t); got != 3*spikeShare {
		t.Errorf("a's stream shows %d requests in the last minute; want %d", got, 3*spikeShare)
	}
	edgetest.Poll(t, 20*time.Second, "the spike announced", func() bool { return hook.count("firing") > 0 })
	t.Logf("the spike was announced %s after the last shares were sent", time.Since(sent).Round(time.Millisecond))
	// More passes: still the one alert, announced once.
	before = passes()
	edgetest.Poll(t, 20*time.Second, "three passes after firing", func() bool { return passes() >= before+3 })
	if n := hook.count("firing"); n != 1 {
		t.Errorf("the receiver heard of the spike %d times; want once", n)
	}
	for _, n := range nodes {
		alerts := n.nodeAlerts(t)
		if len(alerts) != 1 || alerts[0].Rule != "cluster-errors" {
			t.Errorf("%s lists %+v; want the one cluster-errors alert", n.name, alerts)
		}
	}
}
