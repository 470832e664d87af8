package app

import (
	"runtime/debug"

	"github.com/apiwarden/apiwarden/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit to [server]
// memory_limit, unless it is 0 or the GOMEMLIMIT environment variable is
// set (the runtime has read that at start, and it wins). It returns the
// limit in effect afterwards and what set it, for the log. The limit is
// the whole process's: call it once, from Run.
func applyMemoryLimit(limit config.Size, getenv func(string) string) (int64, string) {
	switch {
	case getenv("GOMEMLIMIT") != "":
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	case limit > 0:
		debug.SetMemoryLimit(int64(limit))
		return int64(limit), "server.memory_limit"
	}
	return debug.SetMemoryLimit(-1), "none"
}
