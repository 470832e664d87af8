package keys

import "errors"

// Verification errors. Verify returns exactly one of these (or nil); the
// engine maps them onto the decision codes of package decision.
var (
	// ErrMalformed means the presented string is not shaped like a key or
	// its checksum does not match; it was rejected without any lookup.
	ErrMalformed = errors.New("keys: not a valid API key")
	// ErrNotFound means no key has this secret.
	ErrNotFound = errors.New("keys: key not found")
	// ErrExpired means the key passed its expires_at, or the secret was
	// replaced by a rotation whose grace period has ended.
	ErrExpired = errors.New("keys: key expired")
	// ErrRevoked means the key was revoked.
	ErrRevoked = errors.New("keys: key revoked")
)

// Errors of the admin operations.
var (
	// ErrInvalid wraps a description of a bad create or patch request.
	ErrInvalid = errors.New("keys: invalid request")
	// ErrAlreadyRevoked means a revoked key cannot be changed or rotated.
	ErrAlreadyRevoked = errors.New("keys: key is revoked")
	// ErrBadCursor means a list cursor was not produced by this service.
	ErrBadCursor = errors.New("keys: invalid cursor")
	// ErrNoSecret means the service was started without an HMAC secret.
	ErrNoSecret = errors.New("keys: no key secret configured")
	// ErrSecretTooShort means a configured key secret is shorter than
	// MinSecretLength.
	ErrSecretTooShort = errors.New("keys: key secret too short")
	// ErrSecretMismatch means the data file was written with another key
	// secret: no stored key would verify.
	ErrSecretMismatch = errors.New("keys: the key secret is not the one this data file was written with")
)

// Errors of a shared system of record (cluster mode).
var (
	// ErrUnavailable means the system of record (the cluster's
	// PostgreSQL) could not be reached or did not confirm the write.
	// Verification is unaffected: it reads the local mirror.
	ErrUnavailable = errors.New("keys: the cluster's system of record is unavailable")
)
