package alerting_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
)

func TestRepeatStage(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	alert := func(id string, state alerting.State, sev alerting.Severity, min int) alerting.Alert {
		return alerting.Alert{ID: id, State: state, Severity: sev, LastNotifiedAt: at(min)}
	}
	const firing, resolved = alerting.StateFiring, alerting.StateResolved
	const medium, high = alerting.SeverityMedium, alerting.SeverityHigh
	cases := []struct {
		name     string
		interval time.Duration
		batches  [][]alerting.Alert
		want     [][]string // IDs passed on, per batch
	}{
		{"repeats at the receiver's pace", time.Hour, [][]alerting.Alert{
			{alert("a", firing, medium, 0)},
			{alert("a", firing, medium, 20)},
			{alert("a", firing, medium, 40)},
			{alert("a", firing, medium, 60)},
			{alert("a", firing, medium, 80)},
		}, [][]string{{"a"}, nil, nil, {"a"}, nil}},
		{"a new alert and a resolve always pass", time.Hour, [][]alerting.Alert{
			{alert("a", firing, medium, 0)},
			{alert("a", firing, medium, 20), alert("b", firing, medium, 20)},
			{alert("a", resolved, medium, 30)},
			{alert("a", firing, medium, 40)}, // same ID again after its resolve: told afresh
		}, [][]string{{"a"}, {"b"}, {"a"}, {"a"}}},
		{"a raised severity passes", time.Hour, [][]alerting.Alert{
			{alert("a", firing, medium, 0)},
			{alert("a", firing, high, 10)},
			{alert("a", firing, high, 20)},
		}, [][]string{{"a"}, {"a"}, nil}},
		{"negative: never repeat", -1, [][]alerting.Alert{
			{alert("a", firing, medium, 0)},
			{alert("a", firing, medium, 60*24)},
			{alert("a", resolved, medium, 60*24+1)},
		}, [][]string{{"a"}, nil, {"a"}}},
		{"memory of a week-old alert is dropped", time.Hour, [][]alerting.Alert{
			{alert("a", firing, medium, 0)},
			{alert("b", firing, medium, 8*24*60)},
			{alert("a", firing, medium, 8*24*60+1)}, // forgotten: passes as new
		}, [][]string{{"a"}, {"b"}, {"a"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := alerting.NewRepeatStage(tc.interval)
			for i, batch := range tc.batches {
				out, err := s.Exec(context.Background(), batch...)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, a := range out {
					ids = append(ids, a.ID)
				}
				if !slices.Equal(ids, tc.want[i]) {
					t.Fatalf("batch %d: passed %v, want %v", i, ids, tc.want[i])
				}
			}
		})
	}
}

// Two receivers repeat at their own pace when the evaluator repeats at the
// shorter one's: an hourly chat channel and a four-hourly mailbox.
func TestReceiversRepeatAtTheirOwnPace(t *testing.T) {
	chat, mail := &recorder{}, &recorder{}
	h := newHarness(t, []alerting.Rule{errorSpikeRule()}, func(o *alerting.Options) {
		o.RepeatInterval = time.Hour
		o.Notify = alerting.FanoutStage{
			alerting.MultiStage{alerting.NewRepeatStage(time.Hour), chat},
			alerting.MultiStage{alerting.NewRepeatStage(4 * time.Hour), mail},
		}
	})
	errorRate(h, 1000, 100)
	h.steps(6*30-1, 2*time.Minute) // just under 6 hours
	if n := len(chat.all()); n != 6 {
		t.Errorf("chat got %d notifications in 6 hours, want the first and 5 hourly repeats", n)
	}
	if n := len(mail.all()); n != 2 {
		t.Errorf("mail got %d notifications in 6 hours, want the first and one repeat at 4h", n)
	}
	errorRate(h, 1000, 0)
	h.steps(10, tick)
	if got := mail.statuses(); got[len(got)-1] != "resolved" {
		t.Errorf("mail statuses %v, want the resolve last", got)
	}
}
