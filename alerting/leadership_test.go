package alerting_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
)

// leadFlag is a Leadership the test moves by hand; it counts the
// questions.
type leadFlag struct {
	atomic.Bool
	asked atomic.Int64
}

func (f *leadFlag) Leading() bool {
	f.asked.Add(1)
	return f.Load()
}

// Run makes no pass while another evaluator leads, and once it leads it
// reloads what the other wrote before its first pass: the same alert
// carries on, announced once.
func TestRunFollowsLeadership(t *testing.T) {
	rule := errorSpikeRule()
	rule.For = 0
	h := newHarness(t, []alerting.Rule{rule})
	errorRate(h, 100, 20)

	follower := &leadFlag{}
	opts := h.opts
	opts.Leadership, opts.Interval, opts.Notify = follower, 5*time.Millisecond, &recorder{}
	second, err := alerting.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Run(context.Background()) }()
	defer func() {
		second.Stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	h.step(10 * time.Second) // the leader opens and announces the alert
	id := h.only().ID
	waitFor(t, "the follower's Run ticks", func() bool { return follower.asked.Load() >= 3 })
	if n := second.Stats().Evaluations; n != 0 {
		t.Fatalf("the follower made %d passes", n)
	}

	follower.Store(true)
	waitFor(t, "the new leader evaluates", func() bool { return second.Stats().Evaluations >= 3 })
	list, err := second.List(alerting.Query{})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].State != alerting.StateFiring {
		t.Fatalf("the new leader has %+v (%v), want %s firing", list, err, id)
	}
	if got := opts.Notify.(*recorder).all(); len(got) != 0 {
		t.Fatalf("the new leader announced %d alerts the first one had announced", len(got))
	}
}
