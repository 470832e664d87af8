package lifecycle_test

import (
	"context"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// flusher is a long-running part written the lifecycle way: Run writes
// what is buffered every interval and once more when it ends; a Stop that
// comes before any Run writes it itself.
type flusher struct {
	life lifecycle.State
}

func (f *flusher) flush(why string) { fmt.Println("flush:", why) }

func (f *flusher) Run(ctx context.Context) error {
	return f.life.Run("flusher", func(stop <-chan struct{}) error {
		ticker := time.NewTicker(time.Hour)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				f.flush("interval")
			case <-ctx.Done():
				f.flush("context ended")
				return nil
			case <-stop:
				f.flush("stopped")
				return nil
			}
		}
	})
}

func (f *flusher) Stop() { f.life.Stop(func() { f.flush("stopped before Run") }) }

func Example() {
	var f flusher
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	for !f.life.Running() {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(f.Run(context.Background())) // a second Run while the first is active
	f.Stop()                                 // returns after Run's last flush
	f.Stop()                                 // safe twice
	fmt.Println(<-done)
	fmt.Println(f.Run(context.Background())) // stopped: returns at once

	var idle flusher
	idle.Stop() // no Run: Stop does the last flush
	fmt.Println(idle.Run(context.Background()))
	// Output:
	// flusher: already running
	// flush: stopped
	// <nil>
	// <nil>
	// flush: stopped before Run
	// <nil>
}
