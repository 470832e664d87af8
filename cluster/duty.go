package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// passDuty is a duty the leader performs in passes (Retention, Fold),
// embedded in each: every poll Run asks whether this instance leads and,
// while it does, runs a pass at once and then every interval. Run and
// Stop follow internal/lifecycle; Failures is safe for concurrent use.
type passDuty struct {
	name           string // for lifecycle: "cluster retention"
	failed         string // the warning a failed pass logs
	lead           Leadership
	poll, interval time.Duration
	pass           func(context.Context) error
	log            *slog.Logger
	life           lifecycle.State
	failures       atomic.Uint64 // passes that failed
}

// Failures is how many of this process's passes failed.
func (d *passDuty) Failures() uint64 { return d.failures.Load() }

// Run checks every poll whether this instance leads and, while it does,
// runs a pass at once and then every interval, until ctx ends or Stop is
// called. A failed pass is counted and logged (at the 1st, 2nd, 4th … in
// a row) and tried again at the next poll. Run returns nil.
func (d *passDuty) Run(ctx context.Context) error {
	return d.life.Run(d.name, func(stop <-chan struct{}) error {
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
	})
}

// Stop ends Run and waits for it.
func (d *passDuty) Stop() { d.life.Stop(nil) }
