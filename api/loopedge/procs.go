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
// runtime set it, but no more than the CPUs, so that the P spareP adds
// does not add a loop to a server made after it.
func defaultLoops() int {
	return min(runtime.GOMAXPROCS(0), runtime.NumCPU())
}

// spareP raises GOMAXPROCS to one more than loops, when it is lower, so
// that the goroutines other than the loops have a P of their own. It is
// process-wide and stays raised (the runtime then no longer follows a
// changed CPU limit: runtime.GOMAXPROCS). Safe for concurrent use.
func spareP(loops int) {
	if runtime.GOMAXPROCS(0) <= loops {
		runtime.GOMAXPROCS(loops + 1)
	}
}
