package store

import (
	"context"
	"sync"
)

// readerEpochs counts the read transactions open in each epoch, so that
// ScrubFreePages can wait for every reader that began before a moment
// and for none that began after it. The epoch moves only when a scrub
// asks, so the map holds a handful of entries. The zero value is ready.
type readerEpochs struct {
	mu      sync.Mutex
	epoch   uint64
	open    map[uint64]int // epoch -> read transactions open in it
	drained chan struct{}  // closed when an epoch's count drops to zero
}

// enter registers a reader before its transaction begins and returns
// its epoch, which the reader passes to leave once its transaction ends.
func (r *readerEpochs) enter() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == nil {
		r.open = make(map[uint64]int)
	}
	r.open[r.epoch]++
	return r.epoch
}

// leave unregisters a reader of epoch e.
func (r *readerEpochs) leave(e uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open[e]--; r.open[e] > 0 {
		return
	}
	delete(r.open, e)
	if r.drained != nil {
		close(r.drained)
		r.drained = nil
	}
}

// advance starts a new epoch and returns it: readers registered from now
// on belong to it.
func (r *readerEpochs) advance() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch++
	return r.epoch
}

// waitBefore returns once no reader of an epoch before e is open, or with
// ctx's error when ctx ends first.
func (r *readerEpochs) waitBefore(ctx context.Context, e uint64) error {
	for {
		r.mu.Lock()
		older := false
		for epoch := range r.open {
			if epoch < e {
				older = true
				break
			}
		}
		if !older {
			r.mu.Unlock()
			return nil
		}
		if r.drained == nil {
			r.drained = make(chan struct{})
		}
		drained := r.drained
		r.mu.Unlock()
		select {
		case <-drained:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
