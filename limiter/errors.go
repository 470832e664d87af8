package limiter

import "errors"

// Errors returned while configuring a Limiter, its tiers or its calendar.
var (
	// ErrNoTiers means New or SetTiers was given an empty tier table.
	ErrNoTiers = errors.New("limiter: no tiers configured; define at least one tier")
	// ErrInvalidTier means a tier has a limit out of range or a Name that
	// differs from its key in the table.
	ErrInvalidTier = errors.New("limiter: invalid tier")
	// ErrInvalidRule means a calendar rule has an out-of-range month,
	// weekday, date or multiplier.
	ErrInvalidRule = errors.New("limiter: invalid calendar rule")
	// ErrInvalidDate means ParseDate could not read a civil date.
	ErrInvalidDate = errors.New("limiter: invalid date")
	// ErrInvalidOptions means an Options field is out of range.
	ErrInvalidOptions = errors.New("limiter: invalid options")
)

// Errors returned while persisting and restoring bucket state.
var (
	// ErrCorruptRecord means a stored bucket record could not be decoded.
	// Restoring skips such a record (and deletes it at the next snapshot)
	// rather than refusing to start.
	ErrCorruptRecord = errors.New("limiter: stored bucket record is corrupt")
	// ErrSnapshot means writing bucket state to the store failed; the next
	// snapshot rewrites every bucket so nothing stays unsaved.
	ErrSnapshot = errors.New("limiter: snapshot failed")
)

// Errors returned by the Redis backend.
var (
	// ErrRedisUnavailable means a Redis call failed or timed out, or the
	// circuit breaker is open; the request was decided by local buckets.
	ErrRedisUnavailable = errors.New("limiter: redis unavailable")
)
