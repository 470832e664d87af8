package cluster

import "context"

// withStop returns a context that ends with ctx or when stop (a
// lifecycle loop's stop channel) closes, so a Run loop can hand Stop on to
// the calls it makes. Call cancel when the loop returns; it also ends the
// goroutine that watches stop.
func withStop(ctx context.Context, stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
