// Package store keeps all of apiwarden's state in one bbolt file.
//
// The surface is small on purpose: Open, Close, Update, View, Batch and
// Backup. Callers work inside transactions through Tx, Bucket and Cursor,
// thin wrappers that keep bbolt's types inside this package. Every []byte
// handed out by a Bucket or Cursor points into the memory map and is valid
// only until the transaction ends; copy it to keep it.
package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the data file inside the data directory.
const FileName = "apiwarden.db"

// DefaultLockTimeout is how long Open waits for another process to release
// the data file before it gives up with ErrLocked.
const DefaultLockTimeout = 3 * time.Second

// Options tune Open. The zero value is ready to use.
type Options struct {
	// LockTimeout bounds the wait for the file lock; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// NoSync skips fsync on commit. Only for tests and benchmarks: a crash
	// may lose or corrupt recent transactions.
	NoSync bool
	// Logger receives migration notices; nil discards them.
	Logger *slog.Logger
	// AllocSize is how much the file grows at a time once it is large;
	// 0 means DefaultAllocSize. bbolt's own default (16 MiB) leaves a small
	// installation with a file much larger than its data.
	AllocSize int

	readOnly bool // set by OpenReadOnly
}

// DefaultAllocSize is the growth step of the data file.
const DefaultAllocSize = 4 << 20

// Store is an open data file. It is safe for concurrent use: any number of
// View transactions run in parallel with at most one Update.
type Store struct {
	db      *bolt.DB
	path    string
	log     *slog.Logger
	readers readerEpochs // every read transaction, for ScrubFreePages
}

// Open opens (creating if needed) the data file in dir and migrates its
// schema to the current version.
//
// It returns ErrLocked when another process holds the file, ErrCorrupt when
// the file is not a valid bbolt file, ErrSchemaTooNew when a newer binary
// wrote it and ErrMigration when a migration step fails.
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, log: opts.Logger}
	if err := s.migrate(migrations); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openBolt opens the file and turns bbolt's errors, and its panics on some
// kinds of damage, into this package's sentinels.
func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.LockTimeout,
		NoSync:       opts.NoSync,
		ReadOnly:     opts.readOnly,
		FreelistType: bolt.FreelistMapType,
	})
	switch {
	case err == nil:
		db.AllocSize = opts.AllocSize
		if db.AllocSize <= 0 {
			db.AllocSize = DefaultAllocSize
		}
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is locked (waited %s); stop the other apiwarden or choose another data_dir",
			ErrLocked, filepath.Dir(path), opts.LockTimeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
		errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping):
		return nil, fmt.Errorf("%w: %s: %v (restore it from a backup)", ErrCorrupt, path, err)
	default:
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
}

// Path returns the location of the data file.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. It waits for open transactions.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Update runs fn in a read-write transaction. The transaction commits when
// fn returns nil and rolls back when fn returns an error or panics; a panic
// comes back as an error. Only one Update runs at a time.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.run(s.db.Update, fn)
}

// Batch is Update for many small concurrent writers: bbolt merges calls
// that arrive within a few milliseconds into one transaction, so fn may run
// more than once and must be idempotent.
func (s *Store) Batch(fn func(*Tx) error) error {
	return s.run(s.db.Batch, fn)
}

// View runs fn in a read-only transaction that sees a consistent snapshot.
func (s *Store) View(fn func(*Tx) error) error {
	return s.run(s.view, fn)
}

// view is bbolt's View, registered with s.readers for ScrubFreePages.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	defer s.readers.leave(s.readers.enter())
	return s.db.View(fn)
}

func (s *Store) run(do func(func(*bolt.Tx) error) error, fn func(*Tx) error) (err error) {
	err = do(func(btx *bolt.Tx) (ferr error) {
		defer func() {
			if r := recover(); r != nil {
				ferr = fmt.Errorf("%w: transaction panicked: %v", ErrCorrupt, r)
			}
		}()
		return fn(&Tx{tx: btx})
	})
	return translate(err)
}

// translate maps bbolt and OS errors onto this package's sentinels.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen), errors.Is(err, bolterrors.ErrTxClosed):
		return fmt.Errorf("%w: %v", ErrClosed, err)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	case errors.Is(err, bolterrors.ErrTxNotWritable), errors.Is(err, bolterrors.ErrDatabaseReadOnly):
		return fmt.Errorf("%w: %v", ErrReadOnly, err)
	}
	return err
}

// SizeAnnouncer is a backup destination that wants the copy's size before
// the first byte, such as an HTTP response setting Content-Length.
type SizeAnnouncer interface {
	AnnounceSize(n int64)
}

// Backup writes a consistent copy of the whole file to w from a read
// transaction, so writers carry on while it runs. The copy can be opened
// directly as a data file. If w is a SizeAnnouncer it learns the size
// first. It returns the number of bytes written.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		if a, ok := w.(SizeAnnouncer); ok {
			a.AnnounceSize(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: backup: %w", translate(err))
	}
	return n, nil
}

// Stats is a point-in-time reading for monitoring.
type Stats struct {
	FileSize     int64 // bytes on disk
	FreePages    int   // pages on the freelist
	OpenReadTxs  int   // read transactions open now
	TxsStarted   int64 // read transactions started since Open
	PageAllocs   int64 // bytes allocated for pages by write transactions
	WriteTimeSum time.Duration
}

// Stats reads the file size and bbolt's counters.
func (s *Store) Stats() Stats {
	st := s.db.Stats()
	out := Stats{
		FreePages:    st.FreePageN,
		OpenReadTxs:  st.OpenTxN,
		TxsStarted:   int64(st.TxN),
		PageAllocs:   st.TxStats.GetPageAlloc(),
		WriteTimeSum: st.TxStats.GetWriteTime(),
	}
	if fi, err := os.Stat(s.path); err == nil {
		out.FileSize = fi.Size()
	}
	return out
}

// Check walks every page of the file and returns the first inconsistency
// found, or nil. It reads the whole file: use it in tests and offline tools.
func (s *Store) Check() error {
	return s.view(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker goroutine blocks on an unread channel
			if first == nil {
				first = fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
		}
		return first
	})
}
