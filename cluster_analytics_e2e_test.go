package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/internal/redistest"
)

// Three processes sharing PostgreSQL and Redis take traffic for three
// keys, a different share on each; once shipping catches up, every node
// answers for all three: each key's usage and the day's total equal the
// requests sent, GET /admin/v1/requests pages through exactly that many
// records, the NDJSON export has a line for each, and the billing report
// per key and per owner matches.
func TestClusterProcessesAnswerAnalyticsForAll(t *testing.T) {
	pgURL, redisAddr := pg.Database(t), redistest.Start(t).Addr()
	nodes := []*clusterNode{startNode(t, "a", pgURL, redisAddr), startNode(t, "b", pgURL, redisAddr), startNode(t, "c", pgURL, redisAddr)}
	keys := []edgetest.Key{nodes[0].createKey(t, "polled"), nodes[1].createKey(t, "polled"), nodes[2].createKey(t, "polled")}
	// Wait for the keys through the admin API, which reads the mirror and
	// records nothing, so the checks below are all the traffic.
	for _, n := range nodes {
		for _, k := range keys {
			edgetest.Poll(t, 10*time.Second, fmt.Sprintf("key %s on node %s", k.Key.ID, n.name), func() bool {
				status, _ := n.adminCall(t, "GET", "/admin/v1/keys/"+k.Key.ID, "")
				return status == http.StatusOK
			})
		}
	}
	started := time.Now().UTC()
	sent := map[string]int{}
	for i, n := range nodes {
		for j, k := range keys {
			for range 5 + 7*i + 3*j {
				if got := n.mustCheck(t, k.Secret).Code; got != "VALID" {
					t.Fatalf("check on %s: %s", n.name, got)
				}
				sent[k.Key.ID]++
			}
		}
	}
	total := 0
	for _, k := range keys {
		total += sent[k.Key.ID]
	}

	for _, n := range nodes {
		took := edgetest.Poll(t, 30*time.Second, fmt.Sprintf("node %s to page through all %d records", n.name, total), func() bool {
			return len(nodeRequestIDs(t, n, 50)) == total
		})
		t.Logf("node %s pages through every node's %d records after %s", n.name, total, took.Round(time.Millisecond))
		edgetest.Poll(t, 30*time.Second, fmt.Sprintf("node %s's summary to count %d requests", n.name, total), func() bool { return summaryRequests(t, n) == total })
		status, body := n.adminCall(t, "GET", "/admin/v1/analytics/export?format=ndjson", "")
		if lines := bytes.Count(body, []byte("\n")); status != http.StatusOK || lines != total {
			t.Errorf("node %s: NDJSON export %d with %d lines, want %d", n.name, status, lines, total)
		}
		for _, k := range keys {
			var usage struct {
				Usage struct {
					Today     int `json:"today"`
					ThisMonth int `json:"this_month"`
				} `json:"usage"`
			}
			getJSON(t, n, "/admin/v1/keys/"+k.Key.ID+"/usage", &usage)
			if usage.Usage.Today != sent[k.Key.ID] || usage.Usage.ThisMonth != sent[k.Key.ID] {
				t.Errorf("node %s: key %s usage %+v, want %d today and this month", n.name, k.Key.ID, usage.Usage, sent[k.Key.ID])
			}
		}
		month := started.Format("2006-01")
		var byKey, byOwner struct {
			Rows []struct {
				OwnerID  string `json:"owner_id"`
				KeyID    string `json:"key_id"`
				Requests int    `json:"requests"`
			} `json:"rows"`
			Totals struct {
				Requests int `json:"requests"`
			} `json:"totals"`
		}
		getJSON(t, n, "/admin/v1/analytics/usage?group_by=key&month="+month, &byKey)
		getJSON(t, n, "/admin/v1/analytics/usage?group_by=owner&month="+month, &byOwner)
		got := map[string]int{}
		for _, r := range byKey.Rows {
			got[r.KeyID] = r.Requests
		}
		if byKey.Totals.Requests != total || fmt.Sprint(got) != fmt.Sprint(sent) {
			t.Errorf("node %s: billing by key %v (total %d), want %v (total %d)", n.name, got, byKey.Totals.Requests, sent, total)
		}
		if len(byOwner.Rows) != 1 || byOwner.Rows[0].OwnerID != "org_1" || byOwner.Rows[0].Requests != total {
			t.Errorf("node %s: billing by owner %+v, want org_1 with %d", n.name, byOwner.Rows, total)
		}
	}
}

// summaryRequests is the request count of n's summary of today.
func summaryRequests(t *testing.T, n *clusterNode) int {
	t.Helper()
	var s struct {
		Current struct {
			Requests int `json:"requests"`
		} `json:"current"`
	}
	getJSON(t, n, "/admin/v1/analytics/summary?period=day", &s)
	return s.Current.Requests
}

// nodeRequestIDs pages n's GET /admin/v1/requests to its end and returns
// the request ids; it fails the test on one seen twice.
func nodeRequestIDs(t *testing.T, n *clusterNode, limit int) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Records []struct {
				RequestID string `json:"request_id"`
			} `json:"records"`
			Next string `json:"next_cursor"`
		}
		getJSON(t, n, fmt.Sprintf("/admin/v1/requests?limit=%d&cursor=%s", limit, url.QueryEscape(cursor)), &page)
		for _, r := range page.Records {
			if seen[r.RequestID] {
				t.Fatalf("node %s: request %s on two pages", n.name, r.RequestID)
			}
			seen[r.RequestID] = true
			ids = append(ids, r.RequestID)
		}
		if page.Next == "" {
			return ids
		}
		cursor = page.Next
	}
}

func getJSON(t *testing.T, n *clusterNode, path string, v any) {
	t.Helper()
	status, body := n.adminCall(t, "GET", path, "")
	if status != http.StatusOK || json.Unmarshal(body, v) != nil {
		t.Fatalf("GET %s on %s: %d %s", path, n.name, status, body)
	}
}
