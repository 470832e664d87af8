package store

import (
	"fmt"
	"log/slog"
)

// OpenReadOnly opens the data file at path (a data directory's
// apiwarden.db or a backup of it) for reading only, for offline tools
// such as `apiwarden cluster import`: it never creates, migrates or
// writes the file, and Update fails with ErrReadOnly.
//
// A running apiwarden holds its file's lock exclusively and bbolt's
// read-only open needs a shared one, so a file in use is ErrLocked after
// opts.LockTimeout. It also returns an error wrapping fs.ErrNotExist for
// a missing file, ErrCorrupt and ErrSchemaTooNew. A file at an older
// schema version is opened as it is: readers find the buckets it has.
func OpenReadOnly(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.readOnly = true
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, log: opts.Logger}
	v, err := s.Version()
	if err != nil {
		db.Close()
		return nil, err
	}
	if v > SchemaVersion() {
		db.Close()
		return nil, fmt.Errorf("%w: %s is at version %d, this binary knows up to %d; use the apiwarden that wrote it",
			ErrSchemaTooNew, path, v, SchemaVersion())
	}
	return s, nil
}
