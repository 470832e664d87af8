//go:build !race

package edgetest

// RaceEnabled says whether the race detector is built in (race_on.go).
const RaceEnabled = false
