package lifecycle

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestStartAnswersByPhase(t *testing.T) {
	cases := []struct {
		name   string
		before func(s *State)
		want   error
	}{
		{"idle", func(*State) {}, nil},
		{"while a Run is active", func(s *State) { _, _, _ = s.Start() }, ErrAlreadyRunning},
		{"after Run returned", func(s *State) { _, finish, _ := s.Start(); finish() }, ErrStopped},
		{"after finish twice", func(s *State) { _, finish, _ := s.Start(); finish(); finish() }, ErrStopped},
		{"after Stop without Run", func(s *State) { s.Stop(nil) }, ErrStopped},
		{"after Run and Stop", func(s *State) { _, finish, _ := s.Start(); finish(); s.Stop(nil) }, ErrStopped},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			tc.before(&s)
			stop, finish, err := s.Start()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start: %v, want %v", err, tc.want)
			}
			if (err == nil) != (stop != nil && finish != nil) {
				t.Fatalf("Start: stop %v, finish set %v with err %v", stop, finish != nil, err)
			}
			if err == nil && (!s.Running() || isClosed(stop)) {
				t.Fatal("a successful Start left the part not running, or already told to stop")
			}
		})
	}
}

func TestRunWrapsStartAndFinish(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name      string
		before    func(s *State)
		loopErr   error
		want      error // errors.Is
		wantText  string
		wantLoops int
	}{
		{"runs the loop and returns its error", func(*State) {}, boom, boom, "boom", 1},
		{"after Stop: nil at once", func(s *State) { s.Stop(nil) }, boom, nil, "", 0},
		{"while another Run is active", func(s *State) { _, _, _ = s.Start() }, nil, ErrAlreadyRunning, "part: already running", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			tc.before(&s)
			loops := 0
			err := s.Run("part", func(stop <-chan struct{}) error {
				loops++
				if stop == nil || !s.Running() {
					t.Error("loop called without a stop channel, or not running")
				}
				return tc.loopErr
			})
			if !errors.Is(err, tc.want) || (err != nil && err.Error() != tc.wantText) {
				t.Fatalf("Run: %v, want %q", err, tc.wantText)
			}
			if loops != tc.wantLoops {
				t.Fatalf("loop ran %d times, want %d", loops, tc.wantLoops)
			}
			if tc.wantLoops == 1 && (s.Running() || !isClosed(s.Stopped())) {
				t.Fatal("the part is not stopped after its loop returned")
			}
		})
	}
}

func TestStop(t *testing.T) {
	cases := []struct {
		name      string
		before    func(s *State) // brings the part to the phase Stop finds
		wantFinal int            // calls of whenIdle
	}{
		{"before Run", func(*State) {}, 1},
		{"after Run returned", func(s *State) { _, finish, _ := s.Start(); finish() }, 0},
		{"a second time", func(s *State) { s.Stop(func() {}) }, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			tc.before(&s)
			var final atomic.Int32
			s.Stop(func() { final.Add(1) })
			if got := final.Load(); int(got) != tc.wantFinal {
				t.Errorf("whenIdle ran %d times, want %d", got, tc.wantFinal)
			}
			if !isClosed(s.Stopped()) {
				t.Error("Stopped is open after Stop returned")
			}
			if s.Running() {
				t.Error("Running after Stop returned")
			}
		})
	}
}

// Every concurrent Stop returns only after the part's last work: the
// Run's, when one is active, or whenIdle's, which runs once.
func TestConcurrentStopsWaitForTheLastWork(t *testing.T) {
	for _, withRun := range []bool{true, false} {
		name := map[bool]string{true: "Run active", false: "no Run"}[withRun]
		t.Run(name, func(t *testing.T) {
			var s State
			var lastWork atomic.Bool
			var finals atomic.Int32
			final := func() {
				finals.Add(1)
				time.Sleep(10 * time.Millisecond) // widen the window a Stop could slip through
				lastWork.Store(true)
			}
			ran := make(chan struct{})
			if withRun {
				stop, finish, err := s.Start()
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					defer close(ran)
					defer finish()
					<-stop
					final()
				}()
			} else {
				close(ran)
			}
			const stoppers = 8
			var wg sync.WaitGroup
			for range stoppers {
				wg.Go(func() {
					s.Stop(final)
					if !lastWork.Load() {
						t.Error("a Stop returned before the last work was done")
					}
				})
			}
			wg.Wait()
			<-ran
			if got := finals.Load(); got != 1 {
				t.Fatalf("the last work ran %d times, want once", got)
			}
		})
	}
}

// A Run started in a goroutine just before Stop either runs to its end
// before Stop returns or does not run at all; never after. (A part that
// marks itself running inside Run, after Stop has looked, gets this wrong.)
func TestStopRacingStart(t *testing.T) {
	for i := range 500 {
		var s State
		var stopReturned atomic.Bool
		var runs, finals atomic.Int32
		runDone := make(chan struct{})
		go func() {
			defer close(runDone)
			stop, finish, err := s.Start()
			if err != nil {
				if !errors.Is(err, ErrStopped) {
					t.Errorf("iteration %d: Start: %v", i, err)
				}
				return
			}
			defer finish()
			<-stop
			if stopReturned.Load() {
				t.Errorf("iteration %d: Run worked after Stop returned", i)
			}
			runs.Add(1)
		}()
		s.Stop(func() { finals.Add(1) })
		stopReturned.Store(true)
		<-runDone
		if runs.Load()+finals.Load() != 1 {
			t.Fatalf("iteration %d: Run's last work %d times, whenIdle %d times; want one of them once",
				i, runs.Load(), finals.Load())
		}
	}
}

func TestStoppedIsOneChannelClosedByFinish(t *testing.T) {
	var s State
	stopped := s.Stopped()
	_, finish, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	if isClosed(stopped) {
		t.Fatal("Stopped closed while running")
	}
	finish()
	if !isClosed(stopped) || s.Stopped() != stopped {
		t.Fatal("finish did not close the Stopped channel handed out before")
	}
}
