package config

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in TOML as a string: "1s", "5m", "24h".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use a number with a unit: 500ms, 10s, 5m, 24h)", text)
	}
	if v < 0 {
		return fmt.Errorf("must not be negative, got %s", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration the way UnmarshalText reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Size is a number of bytes written in TOML as a string with a binary
// unit, as GOMEMLIMIT is: "512KiB", "200MiB", "1GiB"; "0" is none.
type Size int64

// sizeUnits are Size's units, longest first so "MiB" is not read as "B".
var sizeUnits = []struct {
	name string
	n    int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// UnmarshalText parses a whole number with one of the units B, KiB, MiB,
// GiB, TiB, or a bare 0.
func (s *Size) UnmarshalText(text []byte) error {
	t := string(text)
	if t == "0" {
		*s = 0
		return nil
	}
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(t, u.name)
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v < 0 || v > math.MaxInt64/u.n {
			break
		}
		*s = Size(v * u.n)
		return nil
	}
	return fmt.Errorf("invalid size %q (use a whole number with a unit: 512KiB, 200MiB, 1GiB)", text)
}

// MarshalText writes the size the way UnmarshalText reads it, in the
// largest unit that divides it.
func (s Size) MarshalText() ([]byte, error) {
	if s == 0 {
		return []byte("0"), nil
	}
	for _, u := range sizeUnits {
		if int64(s)%u.n == 0 {
			return []byte(strconv.FormatInt(int64(s)/u.n, 10) + u.name), nil
		}
	}
	return nil, nil // unreachable: 1 divides every size
}

func (s Size) String() string {
	b, _ := s.MarshalText()
	return string(b)
}

// Secret is a value that may be given literally or as a reference:
// "env:NAME" reads an environment variable, "file:PATH" the first line of a
// file. After Load, a Secret holds the resolved value.
type Secret string

// resolve returns the referenced value. A missing env variable is an empty
// secret (the feature it guards stays off or refuses, and says so); a
// missing file is an error, since someone clearly meant to use it.
func (s Secret) resolve(getenv func(string) string) (Secret, error) {
	v := string(s)
	switch {
	case strings.HasPrefix(v, "env:"):
		return Secret(getenv(strings.TrimPrefix(v, "env:"))), nil
	case strings.HasPrefix(v, "file:"):
		path := strings.TrimPrefix(v, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("cannot read secret file %s: %v", path, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return Secret(strings.TrimSpace(line)), nil
	}
	return s, nil
}

// String hides the value so a Secret never ends up in a log by accident.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "(secret)"
}

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }
