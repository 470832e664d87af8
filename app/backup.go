package app

import (
	"errors"
	"io"
)

// flushingBackup is the store's backup with what the request path keeps in
// memory written first: request records, keys' last-use times and audit
// events, and the limiter's buckets. A backup then holds everything up to
// the moment it was asked for, not up to the last flush interval. A flush
// that fails is logged and the backup goes ahead: an older state is better
// than none, and the buffers keep their contents for the next try.
type flushingBackup struct{ a *App }

func (b flushingBackup) Backup(w io.Writer) (int64, error) {
	a := b.a
	if err := errors.Join(a.rec.Flush(), a.keys.Flush(), a.limits.Snapshot()); err != nil {
		a.log.Warn("backup: writing buffered state first failed; the backup holds what was on disk", "err", err)
	}
	return a.st.Backup(w)
}
