package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// leaderPasses is the loop of a duty the leader performs in passes
// (Retention, Fold): every poll it asks whether this instance leads and,
// while it does, runs a pass at once and then every interval. A failed
// pass is counted and logged (at the 1st, 2nd, 4th … in a row) and tried
// again at the next poll.
type leaderPasses struct {
	lead           Leadership
	poll, interval time.Duration
	pass           func(context.Context) error
	failures       *atomic.Uint64
	log            *slog.Logger
	failed         string // the warning a failed pass logs
}

// run loops until ctx ends or stop is closed, and returns nil; it is the
// loop of a lifecycle.State's Run.
func (d leaderPasses) run(ctx context.Context, stop <-chan struct{}) error {
	ticker := time.NewTicker(d.poll)
	defer ticker.Stop()
	var last time.Time // the last pass since taking the duty; zero: none
	streak := 0
	for {
		switch {
		case !d.lead.Leading():
			last = time.Time{}
		case last.IsZero() || time.Since(last) >= d.interval:
			if err := d.pass(ctx); err == nil {
				last, streak = time.Now(), 0
			} else if ctx.Err() == nil {
				d.failures.Add(1)
				if streak++; streak&(streak-1) == 0 {
					d.log.Warn(d.failed, "failures_in_a_row", streak, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			return nil
		case <-ticker.C:
		}
	}
}
