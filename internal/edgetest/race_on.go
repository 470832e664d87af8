//go:build race

package edgetest

// RaceEnabled says whether the race detector is built in: it drops
// sync.Pool items at random, so allocation counts are not the program's,
// and it doubles the goroutine stack's guard and grows frames, so stack
// sizes are not the program's either.
const RaceEnabled = true
