// Package lifecycle gives every long-running part of apiwarden (the
// limiter's sweeper, the metrics writer, the key write-behind, the alert
// evaluator and dispatcher, and whatever comes next) one set of start and
// stop rules, so that each part's Run and Stop behave alike and a caller
// can shut them down in any order without reading their code.
//
// A part holds a State, writes its Run as State.Run around its loop (or
// calls Start itself when it has something to do even once stopped), and
// makes its Stop call State.Stop. The rules, whatever the order and however many
// goroutines call:
//
//   - A part runs at most once. Start succeeds for the first Run only;
//     while that Run is active Start returns ErrAlreadyRunning, and once
//     the part has stopped it returns ErrStopped (a part's Run then
//     returns nil at once).
//   - Stop is safe to call before Run, twice, and from several goroutines.
//     Every call returns only when the part has stopped: its Run has
//     returned, or, when no Run had started, the part's final work (the
//     function given to Stop) is done.
//   - A Stop that comes before Run is final: a Run called later does not
//     start. This is what makes "Stop returned" mean "nothing of this part
//     runs any more" even when a goroutine running Run was started just
//     before Stop and has not reached Start yet.
//
// The model is the start/stop helper of riverqueue/river (startstop),
// reduced to a blocking Run(ctx) and Stop, which is the shape every part
// here already had.
package lifecycle

import (
	"errors"
	"fmt"
	"sync"
)

// Errors returned by Start. Parts wrap them with their own prefix.
var (
	// ErrAlreadyRunning means Run was called while another Run of the same
	// part is active.
	ErrAlreadyRunning = errors.New("already running")
	// ErrStopped means Run was called after the part stopped: Stop was
	// called, or an earlier Run has returned. Parts turn it into a nil
	// return: there is nothing left to do.
	ErrStopped = errors.New("already stopped")
)

type phase uint8

const (
	idle    phase = iota // neither started nor stopped
	running              // a Run is between Start and finish
	stopped              // final: Run has returned, or Stop came first
)

// State is where one long-running part is in its life: idle, running or
// stopped. The zero value is an idle part, ready to use; a State must not
// be copied after first use. Every method is safe for concurrent use: one
// mutex orders Start against Stop, so exactly one of them decides whether
// a Run happens.
type State struct {
	mu    sync.Mutex
	phase phase
	stop  chan struct{} // closed by the first Stop; made on first use
	done  chan struct{} // closed when the part has stopped; made on first use
}

// channels makes stop and done on first use, so the zero State works. It
// needs mu.
func (s *State) channels() {
	if s.stop == nil {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
	}
}

// Start begins a Run. On success the part is running; Start returns the
// channel Stop closes, which the Run's loop selects on next to its
// context, and finish, which the Run must call (defer it) when it
// returns: finish marks the part stopped, closes Stopped and releases
// every Stop waiting. Calling finish more than once is harmless.
//
// Start returns ErrAlreadyRunning while another Run is active and
// ErrStopped once the part has stopped (after Stop, or after the first
// Run returned); it then changes nothing.
func (s *State) Start() (stop <-chan struct{}, finish func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels()
	switch s.phase {
	case running:
		return nil, nil, ErrAlreadyRunning
	case stopped:
		return nil, nil, ErrStopped
	}
	s.phase = running
	return s.stop, sync.OnceFunc(s.finish), nil
}

// Run is Start, loop and finish, for a part whose Run does nothing once
// stopped. When Start succeeds, Run calls loop with the stop channel and
// returns what loop returns, marking the part stopped after it; when the
// part has stopped it returns nil at once; while another Run is active it
// returns ErrAlreadyRunning wrapped as "name: already running".
func (s *State) Run(name string, loop func(stop <-chan struct{}) error) error {
	stop, finish, err := s.Start()
	if errors.Is(err, ErrStopped) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer finish()
	return loop(stop)
}

func (s *State) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase = stopped
	close(s.done)
}

// Stop stops the part and returns once it has stopped. It closes the stop
// channel (the first call only) and then:
//
//   - while a Run is active, waits until that Run has called finish;
//   - when no Run has started, marks the part stopped, so that a later
//     Start fails with ErrStopped, calls whenIdle (if not nil) for the
//     part's final work, then closes Stopped. Only the first Stop calls
//     whenIdle; Stops that arrive meanwhile wait for it to return. Parts
//     pass the same function to every call;
//   - when the part has stopped already, returns at once.
//
// Stop must not be called from inside the Run it waits for, nor from
// whenIdle.
func (s *State) Stop(whenIdle func()) {
	s.mu.Lock()
	s.channels()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	first := s.phase == idle
	if first {
		s.phase = stopped
	}
	done := s.done
	s.mu.Unlock()
	if first {
		defer close(done)
		if whenIdle != nil {
			whenIdle()
		}
		return
	}
	<-done
}

// Stopped returns a channel that is closed once the part has stopped: its
// Run has returned, or Stop found no Run and finished the part's final
// work. It is the same channel on every call.
func (s *State) Stopped() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels()
	return s.done
}

// Running reports whether a Run is active: Start has succeeded and its
// finish has not been called yet. It is a reading for tests and
// monitoring; by the time the caller looks, it may have changed.
func (s *State) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase == running
}
