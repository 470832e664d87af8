package store

import "errors"

// Errors returned while opening a data directory.
var (
	// ErrLocked means another process holds the data file open.
	ErrLocked = errors.New("store: data directory is in use by another process")
	// ErrCorrupt means the data file exists but is not a readable bbolt file.
	ErrCorrupt = errors.New("store: data file is corrupt or not an apiwarden data file")
)

// Errors returned while migrating the schema.
var (
	// ErrSchemaTooNew means the file was written by a newer apiwarden.
	ErrSchemaTooNew = errors.New("store: data file has a newer schema than this binary understands")
	// ErrMigration means a migration step failed; the file is left at the
	// last version that migrated completely.
	ErrMigration = errors.New("store: schema migration failed")
)

// Errors returned while reading and writing.
var (
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("store: closed")
	// ErrBucketMissing means a bucket the caller expected does not exist.
	ErrBucketMissing = errors.New("store: bucket does not exist")
	// ErrDiskFull means a write failed because the disk has no space left.
	// Nothing of the failed transaction was written.
	ErrDiskFull = errors.New("store: no space left on device")
	// ErrReadOnly means a write was attempted in a read-only transaction.
	ErrReadOnly = errors.New("store: transaction is read-only")
)
