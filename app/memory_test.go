package app

import (
	"runtime/debug"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// server.memory_limit sets the runtime's soft limit unless GOMEMLIMIT is
// set; 0 leaves the limit as it is.
func TestApplyMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	env := func(v string) func(string) string {
		return func(name string) string {
			if name == "GOMEMLIMIT" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name       string
		limit      config.Size
		gomemlimit string
		want       int64
		from       string
	}{
		{"from the configuration", 300 << 20, "", 300 << 20, "server.memory_limit"},
		{"GOMEMLIMIT wins", 300 << 20, "500MiB", 123 << 20, "GOMEMLIMIT"},
		{"0 leaves it", 0, "", 123 << 20, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(123 << 20) // as if the runtime had read GOMEMLIMIT, or a run before
			got, from := applyMemoryLimit(tc.limit, env(tc.gomemlimit))
			if got != tc.want || from != tc.from || debug.SetMemoryLimit(-1) != tc.want {
				t.Fatalf("limit %d set by %q (runtime %d), want %d by %q", got, from, debug.SetMemoryLimit(-1), tc.want, tc.from)
			}
		})
	}
}
