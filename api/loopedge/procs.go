package loopedge

import "runtime"

// A busy loop never parks its goroutine: it holds its P (the Go
// scheduler's right to run Go code) from one event batch to the next.
// With as many Ps as loops, every other goroutine — the recorder a
// request's record wakes, the key cache's policy, the GC's workers, the
// hand-off edge, the admin listener — waits until the scheduler's
// monitor preempts a loop (10 ms), and that loop's connections then wait
// for the whole run of what took its P; the monitor itself polls every
// 20 µs while no P is idle. docs/BENCHMARKS.md, "The event-loop edge's
// cost a request (thirteenth session)", has the figures.

// defaultLoops is one loop a CPU the process may use: GOMAXPROCS as the
// runtime set it, but no more than the CPUs, so that the P SpareP adds
// does not add a loop to a server made after it.
func defaultLoops() int {
	return min(runtime.GOMAXPROCS(0), runtime.NumCPU())
}

// SpareP raises GOMAXPROCS to one more than the server's loops, when it
// is not higher, so that the goroutines other than the loops have a P of
// their own, and returns GOMAXPROCS. It is a setting of the whole
// process, which stays raised (the runtime then no longer follows a
// changed CPU limit: runtime.GOMAXPROCS): the program calls it once,
// before Serve, as it sets the memory limit (app.Run).
func (s *Server) SpareP() int {
	if p := runtime.GOMAXPROCS(0); p > s.loops {
		return p
	}
	runtime.GOMAXPROCS(s.loops + 1)
	return s.loops + 1
}
