package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalid is wrapped by every error Load and Parse return for a file
// that was read but is not a valid configuration.
var ErrInvalid = errors.New("config: invalid configuration")

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string // file name as given to Load or Parse
	Line int    // 1-based; 0 when the key has no line (a default or an env override)
	Key  string // "tiers.free.requests_per_hour", "routes[2].preset"
	Msg  string // "must be > 0, got -5"
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString("config: ")
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(" ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one file, in line order. It is the
// error Load and Parse return, so `config check` can print them all.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets callers test errors.Is(err, ErrInvalid).
func (ps Problems) Unwrap() error { return ErrInvalid }

func (ps Problems) sorted() Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Key < ps[j].Key
	})
	return ps
}

// problemList collects problems with their lines while decoding and
// validating.
type problemList struct {
	file  string
	lines lineIndex
	list  Problems
}

// add records a problem; a key that already has one (a value that failed
// to decode) gets no second, derived complaint.
func (pl *problemList) add(key, format string, args ...any) {
	for _, p := range pl.list {
		if p.Key == key {
			return
		}
	}
	pl.list = append(pl.list, Problem{File: pl.file, Line: pl.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}
