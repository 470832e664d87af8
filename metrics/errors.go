package metrics

import "errors"

// Errors returned while configuring and running a Recorder.
var (
	// ErrInvalidOptions means New was given options it cannot work with;
	// the wrapped message names the option.
	ErrInvalidOptions = errors.New("metrics: invalid options")
	// ErrFlush means a flush could not commit; the records stay in memory
	// (up to Options.MaxPending) and are retried at the next flush.
	ErrFlush = errors.New("metrics: flush failed")
)

// Errors returned while decoding what is on disk.
var (
	// ErrCorruptBlock means a raw record block could not be decoded.
	ErrCorruptBlock = errors.New("metrics: corrupt raw record block")
	// ErrCorruptCell means a rollup cell or histogram could not be decoded.
	ErrCorruptCell = errors.New("metrics: corrupt rollup cell")
)

// Errors returned by the read API.
var (
	// ErrBadCursor means a pagination cursor was not produced by Records for
	// a query of the same order; start again without a cursor.
	ErrBadCursor = errors.New("metrics: invalid cursor")
	// ErrBadQuery means a query names an unknown dimension or interval, or
	// an empty time range.
	ErrBadQuery = errors.New("metrics: invalid query")
)

// Errors returned while parsing names.
var (
	// ErrUnknownName means a string is not one of the names an enum knows
	// (error category, dimension, interval).
	ErrUnknownName = errors.New("metrics: unknown name")
)

// Errors returned by ParseEvents. Per-record problems are not errors: they
// come back as EventError values next to the accepted records.
var (
	// ErrTooManyEvents means a batch holds more than MaxEventsPerBatch
	// records; the API answers 413 and nothing of the batch is accepted.
	ErrTooManyEvents = errors.New("metrics: too many events in one batch")
	// ErrMalformedEvents means the body is not a JSON array or NDJSON at
	// all (or an array is cut off); the API answers 400.
	ErrMalformedEvents = errors.New("metrics: body is not a JSON array or NDJSON")
)
