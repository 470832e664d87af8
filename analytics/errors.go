package analytics

import (
	"errors"
	"fmt"
)

// Errors returned while configuring.
var (
	// ErrBadOptions means New or NewRealtime was given options it cannot
	// work with; the wrapped message names the option.
	ErrBadOptions = errors.New("analytics: invalid options")
)

// Errors returned by queries.
var (
	// ErrInvalidQuery is wrapped by every *ParamError: a query parameter
	// is missing, malformed or out of range.
	ErrInvalidQuery = errors.New("analytics: invalid query")
	// ErrWindowTooLong means Realtime.Window was asked for more than the
	// ring holds (RealtimeOptions.Span).
	ErrWindowTooLong = errors.New("analytics: window is longer than the realtime ring")
)

// Errors returned while merging other instances' realtime rings.
var (
	// ErrBadPart means a RealtimePart could not be applied: an unknown
	// kind or version, a start off the slot grid, or a payload that does
	// not decode; the wrapped message says which.
	ErrBadPart = errors.New("analytics: bad realtime part")
)

// ParamError says which query parameter is wrong and why. Its message
// starts with the parameter's name, as the admin API's 400 answers do:
// "interval: must be minute, hour or day".
type ParamError struct {
	Param  string // the query parameter, as the API spells it
	Reason string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Reason }

// Unwrap makes every ParamError match ErrInvalidQuery.
func (e *ParamError) Unwrap() error { return ErrInvalidQuery }

func paramErrorf(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}
