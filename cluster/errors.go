package cluster

import "errors"

// Errors of starting: opening the pool and migrating the schema.
var (
	// ErrSchemaNewer means the database was migrated by a newer apiwarden
	// than this binary: its schema may hold what this one cannot read.
	// Upgrade the binary (or restore the database); nothing was changed.
	ErrSchemaNewer = errors.New("cluster: the PostgreSQL schema is newer than this binary knows")
	// ErrBadMigration means an embedded migration file is misnamed or its
	// numbers repeat: a bug in the build, not in the database.
	ErrBadMigration = errors.New("cluster: embedded migrations are not uniquely numbered NNN_name.up.sql files")
	// ErrKeySecretMismatch means this instance hashes keys with another
	// secret than the one the cluster's keys were hashed with.
	ErrKeySecretMismatch = errors.New("cluster: security.key_secret differs from the one the cluster's keys were made with")
)

// Errors of running.
var (
	// ErrNotReady means PostgreSQL has not been reached since start, so
	// the schema is not known to be current; calls fail until it is.
	ErrNotReady = errors.New("cluster: PostgreSQL not reached yet")
)

// Errors of importing a single instance's data file (Cluster.Import).
var (
	// ErrImportSecret means the data file's keys were hashed with another
	// key secret than the one given: imported, none of them would verify.
	ErrImportSecret = errors.New("cluster: import: the data file's keys were made with another key secret than security.key_secret")
)
