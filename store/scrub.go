package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Why free pages are overwritten, and why this way.
//
// bbolt copies a page on write and puts the old copy on its freelist; the
// bytes stay in the file until the page is allocated again, which may be
// never. Deleting or rewriting data therefore leaves it readable in the
// file (and in every backup taken from it) for an unbounded time. Two ways
// out were weighed:
//
//   - Compacting into a new file and swapping it in removes every free
//     page at once, but copies the whole file (all raw records, minutes
//     for a large one), doubles the disk space for the time, and needs
//     every holder of the *Store to reopen, so the request path would stop.
//   - Overwriting the free pages in place costs writes only for the pages
//     that are free, needs no extra space, and leaves the file and the
//     *Store as they are.
//
// ScrubFreePages does the second. A free page may be overwritten once no
// transaction can read it: it is on the freelist (free or pending), and
// every read transaction open began after the last commit, so each sees
// the current tree, which reaches no freed page. Holding the writer lock
// (a write transaction, rolled back at the end) keeps the freelist still
// and the last commit the last; waiting for the readers that began before
// the lock was taken makes the rest true. An allocated page is always
// written whole by bbolt, so a page reused later never shows old bytes.

// scrubReaderWait bounds how long ScrubFreePages holds the writer lock
// waiting for older readers; past it, it lets go and tries again, so a
// long backup or export delays the scrub instead of every flush.
const scrubReaderWait = time.Second

// ScrubResult says what ScrubFreePages overwrote.
type ScrubResult struct {
	Pages int   // free pages overwritten with zeros
	Bytes int64 // their size
}

// ScrubFreePages overwrites every page on the file's freelist with zeros
// and syncs the file (unless opened with NoSync), so data deleted or
// replaced before the call is gone from the file, not just unreachable.
// It holds the writer lock while it writes, so Update and Batch wait
// (for about the time it takes to write the free pages); readers carry
// on. It waits for read transactions that began before it (a backup, for
// one); it returns ctx's error if ctx ends first, and ErrReadOnly for a
// store opened read-only.
func (s *Store) ScrubFreePages(ctx context.Context) (ScrubResult, error) {
	if s.db.IsReadOnly() {
		return ScrubResult{}, fmt.Errorf("%w: scrub free pages", ErrReadOnly)
	}
	for {
		// Let older readers finish without holding the writer lock.
		if err := s.readers.waitBefore(ctx, s.readers.advance()); err != nil {
			return ScrubResult{}, err
		}
		res, err := s.scrubOnce(ctx)
		if !errors.Is(err, errReadersStillOpen) {
			return res, err
		}
	}
}

// errReadersStillOpen means a reader older than the writer lock did not
// end within scrubReaderWait; the scrub lets go of the lock and retries.
var errReadersStillOpen = errors.New("store: readers older than the scrub still open")

// scrubOnce overwrites the free pages inside one write transaction that
// it rolls back: it changes no page bbolt reaches.
func (s *Store) scrubOnce(ctx context.Context) (ScrubResult, error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return ScrubResult{}, fmt.Errorf("store: scrub: %w", translate(err))
	}
	defer func() { _ = tx.Rollback() }()
	waitCtx, cancel := context.WithTimeout(ctx, scrubReaderWait)
	err = s.readers.waitBefore(waitCtx, s.readers.advance())
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ScrubResult{}, ctx.Err()
		}
		return ScrubResult{}, errReadersStillOpen
	}
	pageSize := int64(s.db.Info().PageSize)
	highWater := int(tx.Size() / pageSize)
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return ScrubResult{}, fmt.Errorf("store: scrub: %w", err)
	}
	defer f.Close()
	zeros := make([]byte, 256*pageSize)
	var res ScrubResult
	runStart, runLen := uint64(0), 0
	flush := func() error {
		for runLen > 0 {
			n := min(runLen, len(zeros)/int(pageSize))
			if _, err := f.WriteAt(zeros[:int64(n)*pageSize], int64(runStart)*pageSize); err != nil {
				return translate(err)
			}
			res.Pages += n
			res.Bytes += int64(n) * pageSize
			runStart += uint64(n)
			runLen -= n
		}
		return nil
	}
	// The freelist page lists the candidates, so only free pages are
	// read; failing that, every page is asked about (pages 0 and 1 are
	// the meta pages, never free).
	candidates, ok := freelistIDs(f, pageSize)
	if !ok {
		for id := uint64(2); id < uint64(highWater); id++ {
			candidates = append(candidates, id)
		}
	}
	for _, id := range candidates {
		// bbolt decides: a page is overwritten only if it is on its
		// freelist now.
		info, err := tx.Page(int(id))
		if err != nil {
			return res, fmt.Errorf("store: scrub: page %d: %w", id, err)
		}
		if info == nil || info.Type != "free" {
			continue
		}
		if runLen > 0 && runStart+uint64(runLen) == id {
			runLen++
			continue
		}
		if err := flush(); err != nil {
			return res, fmt.Errorf("store: scrub: %w", err)
		}
		runStart, runLen = id, 1
	}
	if err := flush(); err != nil {
		return res, fmt.Errorf("store: scrub: %w", err)
	}
	if !s.db.NoSync {
		if err := f.Sync(); err != nil {
			return res, fmt.Errorf("store: scrub: sync: %w", translate(err))
		}
	}
	return res, nil
}
