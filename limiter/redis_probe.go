package limiter

import (
	"context"
	"time"
)

// Run probes Redis on a timer until ctx ends or Stop is called, and
// returns nil. With no request arriving, nothing else would probe an open
// circuit breaker: Healthy, /readyz and the redis_healthy gauge would
// report the fallback long after Redis came back.
//
// A call while Run is active returns an error wrapping
// lifecycle.ErrAlreadyRunning; a call after Stop, or after Run has
// returned, returns nil at once.
func (r *Redis) Run(ctx context.Context) error {
	return r.life.Run("limiter: redis", func(stop <-chan struct{}) error {
		timer := time.NewTimer(r.breaker.coolDown)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-stop:
				return nil
			case <-timer.C:
			}
			timer.Reset(r.probeIfDue(ctx))
		}
	})
}

// Stop ends Run and waits for it; a probe in flight finishes first (it is
// bounded by the timeout). It is safe to call more than once, from several
// goroutines, and before Run (which then returns at once). Call it before
// Close.
func (r *Redis) Stop() { r.life.Stop(nil) }

// probeIfDue pings Redis when the breaker is open and its cool-down has
// ended, as the request path's probe would, and returns how long Run waits
// before looking again.
func (r *Redis) probeIfDue(ctx context.Context) time.Duration {
	due, wait := r.breaker.probe(r.local.now().UnixNano())
	if !due {
		return wait
	}
	if err := r.Ping(ctx); err != nil {
		// Still down: no news, so no warning every cool-down.
		r.breaker.failure(r.local.now().UnixNano())
		r.log.Debug("limiter: redis probe failed; still deciding locally", "err", err, "retry_in", r.breaker.coolDown)
		return r.breaker.coolDown
	}
	r.succeeded()
	return r.breaker.coolDown
}
