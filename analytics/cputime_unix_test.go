//go:build unix

package analytics_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used,
// so benchmarks can report their cost on a machine whose other load
// makes wall-clock figures noisy.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
