package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// /v1/events takes records of the last 24 hours (metrics.max_ingested_age)
// and at most 5 minutes ahead (max_ingested_future): older ones would file
// traffic into days already billed.
func TestEventsRefuseRecordsOutsideTheWindow(t *testing.T) {
	a, _ := startApp(t, nil)
	now := time.Now().UTC()
	var body strings.Builder
	for _, at := range []time.Duration{-time.Hour, -48 * time.Hour, -30 * 24 * time.Hour, 30 * time.Minute, time.Minute} {
		fmt.Fprintf(&body, `{"time":%q,"method":"GET","path":"/x","status":200}`+"\n", now.Add(at).Format(time.RFC3339))
	}
	got := call(t, "POST", "http://"+a.Addr()+"/v1/events", map[string]string{"Content-Type": "application/x-ndjson"}, body.String())
	var resp struct {
		Accepted, Rejected int
		Errors             []struct {
			Line    int
			Message string
		}
	}
	if err := json.Unmarshal([]byte(got.body), &resp); err != nil {
		t.Fatalf("%d %s", got.status, got.body)
	}
	if got.status != 202 || resp.Accepted != 2 || resp.Rejected != 3 || len(resp.Errors) != 3 {
		t.Fatalf("%d %s; want lines 1 and 5 accepted, 2 to 4 refused", got.status, got.body)
	}
	for i, want := range []struct {
		line int
		text string
	}{{2, "in the past"}, {3, "in the past"}, {4, "in the future"}} {
		if e := resp.Errors[i]; e.Line != want.line || !strings.Contains(e.Message, want.text) {
			t.Errorf("error %d = %+v, want line %d saying %q", i, e, want.line, want.text)
		}
	}
}
