package metrics

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/apiwarden/apiwarden/store"
)

// Erasure works in small transactions, like retention, so flushes never
// wait long for the write lock: blocks are decoded and re-encoded inside
// a read transaction, and a write transaction only swaps at most
// eraseBatchBlocks of them in; rollup cells go eraseBatchCells at a time.
const (
	eraseBatchBlocks = 8
	eraseBatchCells  = 1000
)

// EraseRequest names whose usage data Erase removes: exactly one of
// KeyID and OwnerID.
type EraseRequest struct {
	KeyID   string
	OwnerID string
	// Rollups also deletes rollup cells: the key's (DimKey), or the
	// owner's (DimOwner) and those of every key in KeyIDs or on one of
	// the owner's erased records. Without it the cells stay, so the
	// billing report and usage totals still sum.
	Rollups bool
	// KeyIDs are the owner's keys, whose cells Rollups deletes too.
	KeyIDs []string
	// RequestedBy names who asked (the admin actor), for the audit trail
	// in cluster mode; Erase does not use it.
	RequestedBy string
}

// EraseResult says what Erase removed. Counts, never the data.
type EraseResult struct {
	RawRecords      int `json:"raw_records"`      // raw records removed
	BlocksRewritten int `json:"blocks_rewritten"` // raw blocks written again without them
	BlocksDeleted   int `json:"blocks_deleted"`   // raw blocks that held nothing else
	RollupCells     int `json:"rollup_cells"`     // hourly and daily cells deleted (Rollups)
	ScrubbedPages   int `json:"scrubbed_pages"`   // free pages of the file overwritten
	// KeyIDs are the keys whose cells were deleted (Rollups), for the
	// copies elsewhere (cluster mode).
	KeyIDs []string `json:"-"`
}

// Eraser removes one key's or one owner's usage data from the data file.
// Erase calls run one at a time; flushes, reads and retention carry on
// meanwhile. Build it with NewEraser.
type Eraser struct {
	st    *store.Store
	flush func() error // commits what is buffered; nil when nothing is
	log   *slog.Logger
	dict  *dictReader
	mu    sync.Mutex // one Erase at a time
}

// NewEraser returns an Eraser of st's data. rec, when not nil, is the
// Recorder writing to st: Erase flushes it first, so records it holds
// are erased too. log receives progress; nil discards.
func NewEraser(st *store.Store, rec *Recorder, log *slog.Logger) *Eraser {
	e := &Eraser{st: st, log: log, dict: newDictReader()}
	if rec != nil {
		e.flush = rec.Flush
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e
}

// blockRef names a raw block: its day bucket and its key there.
type blockRef struct {
	day, key []byte
}

// Erase removes the raw records of req's key or owner: every block
// holding one is written again without them, under its own key (so a
// shipper that has not reached it ships it without them), or deleted
// when nothing else is left; the other records keep their content and
// order. With req.Rollups it deletes the rollup cells named there. Then
// it overwrites the file's free pages (store.ScrubFreePages), where the
// old blocks' bytes would otherwise stay.
//
// It reaches every record committed before it starts (it flushes the
// Recorder first); records of the key arriving meanwhile are kept. A
// pagination cursor taken before an erase may skip or repeat records of
// a rewritten block. It stops between transactions when ctx ends,
// returning ctx.Err() with what it removed so far; running it again
// finishes the job. Errors: ErrBadQuery for a request naming neither or
// both, ErrCorruptBlock, and the store's errors, wrapped.
func (e *Eraser) Erase(ctx context.Context, req EraseRequest) (EraseResult, error) {
	var res EraseResult
	if (req.KeyID == "") == (req.OwnerID == "") {
		return res, fmt.Errorf("%w: an erasure names a key id or an owner id, not both", ErrBadQuery)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flush != nil {
		if err := e.flush(); err != nil {
			return res, fmt.Errorf("metrics: erase: flush first: %w", err)
		}
	}
	blocks, err := e.candidates(req)
	if err != nil {
		return res, err
	}
	keysSeen := map[string]bool{}
	for start := 0; start < len(blocks); start += eraseBatchBlocks {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		batch := blocks[start:min(start+eraseBatchBlocks, len(blocks))]
		if err := e.rewrite(req, batch, &res, keysSeen); err != nil {
			return res, err
		}
	}
	if req.Rollups {
		if err := e.deleteCells(ctx, req, keysSeen, &res); err != nil {
			return res, err
		}
	}
	scrub, err := e.st.ScrubFreePages(ctx)
	res.ScrubbedPages = scrub.Pages
	if err != nil {
		return res, fmt.Errorf("metrics: erase: %w", err)
	}
	e.log.Info("metrics: erased usage data", "key", req.KeyID, "owner", req.OwnerID,
		"raw_records", res.RawRecords, "blocks_rewritten", res.BlocksRewritten,
		"blocks_deleted", res.BlocksDeleted, "rollup_cells", res.RollupCells, "scrubbed_pages", res.ScrubbedPages)
	return res, nil
}

// candidates lists the blocks that may hold req's records: for a key,
// those whose header lists it (every block before version 3); for an
// owner, every block, since blocks do not index owners. None when the
// dictionary never saw the key or owner.
func (e *Eraser) candidates(req EraseRequest) ([]blockRef, error) {
	var out []blockRef
	err := e.st.View(func(tx *store.Tx) error {
		subject := req.KeyID
		if subject == "" {
			subject = req.OwnerID
		}
		id, ok := lookupDictID(tx, subject)
		if !ok {
			return nil
		}
		raw, err := tx.MustBucket(store.BucketRaw)
		if err != nil {
			return err
		}
		days := raw.Cursor()
		for day, v := days.First(); day != nil; day, v = days.Next() {
			dayBucket := raw.Bucket(day)
			if v != nil || dayBucket == nil {
				continue
			}
			c := dayBucket.Cursor()
			for k, block := c.First(); k != nil; k, block = c.Next() {
				if req.KeyID != "" {
					h, _, err := parseBlockHeader(block)
					if err != nil {
						return fmt.Errorf("metrics: erase: block %x of %s: %w", k, day, err)
					}
					if holds, err := h.mayHoldKey(id); err != nil || !holds {
						if err != nil {
							return fmt.Errorf("metrics: erase: block %x of %s: %w", k, day, err)
						}
						continue
					}
				}
				out = append(out, blockRef{day: bytes.Clone(day), key: bytes.Clone(k)})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: erase: list blocks: %w", err)
	}
	return out, nil
}

// blockEdit is one block as read and as it is to be written (nil:
// deleted).
type blockEdit struct {
	ref      blockRef
	old, new []byte
	erased   int // records left out
}

// rewrite erases req's records from the blocks of batch: it decodes and
// re-encodes them in a read transaction (planEdits), then swaps them in
// within one short write transaction (applyEdits), skipping any block
// that changed in between.
func (e *Eraser) rewrite(req EraseRequest, batch []blockRef, res *EraseResult, keysSeen map[string]bool) error {
	edits, err := e.planEdits(req, batch, keysSeen)
	if err != nil {
		return fmt.Errorf("metrics: erase: %w", err)
	}
	if len(edits) == 0 {
		return nil
	}
	if err := e.applyEdits(edits, res); err != nil {
		return fmt.Errorf("metrics: erase: write blocks: %w", err)
	}
	return nil
}

// planEdits returns the edits that erase req's records from the blocks of
// batch, in one read transaction, noting the keys erased in keysSeen.
func (e *Eraser) planEdits(req EraseRequest, batch []blockRef, keysSeen map[string]bool) ([]blockEdit, error) {
	var edits []blockEdit
	err := e.st.View(func(tx *store.Tx) error {
		raw, err := tx.MustBucket(store.BucketRaw)
		if err != nil {
			return err
		}
		resolve := e.dict.resolver(tx)
		intern := func(s string) (uint64, error) {
			id, ok := lookupDictID(tx, s)
			if !ok {
				return 0, fmt.Errorf("%w: %q is not in the dictionary", ErrCorruptBlock, s)
			}
			return id, nil
		}
		var dec blockDecoder
		enc := newBlockEncoder()
		var recs []Record
		var kept []*Record
		for _, ref := range batch {
			dayBucket := raw.Bucket(ref.day)
			if dayBucket == nil {
				continue // retention dropped the day meanwhile
			}
			old := dayBucket.Get(ref.key)
			if old == nil {
				continue
			}
			if recs, err = dec.decode(old, resolve, recs[:0]); err != nil {
				return fmt.Errorf("block %x of %s: %w", ref.key, ref.day, err)
			}
			kept = kept[:0]
			for i := range recs {
				if r := &recs[i]; (req.KeyID != "" && r.KeyID == req.KeyID) || (req.OwnerID != "" && r.OwnerID == req.OwnerID) {
					keysSeen[r.KeyID] = true
					continue
				}
				kept = append(kept, &recs[i])
			}
			if len(kept) == len(recs) {
				continue
			}
			edit := blockEdit{ref: ref, old: bytes.Clone(old), erased: len(recs) - len(kept)}
			if len(kept) > 0 {
				if edit.new, err = enc.encode(nil, kept, intern); err != nil {
					return fmt.Errorf("block %x of %s: %w", ref.key, ref.day, err)
				}
			}
			edits = append(edits, edit)
		}
		return nil
	})
	return edits, err
}

// applyEdits swaps edits in, in one write transaction, skipping any block
// that changed since planEdits read it, and adds what it did to res.
func (e *Eraser) applyEdits(edits []blockEdit, res *EraseResult) error {
	var rewritten, deleted, removed int
	err := e.st.Update(func(tx *store.Tx) error {
		rewritten, deleted, removed = 0, 0, 0
		raw, err := tx.MustBucket(store.BucketRaw)
		if err != nil {
			return err
		}
		for _, ed := range edits {
			dayBucket := raw.Bucket(ed.ref.day)
			if dayBucket == nil || !bytes.Equal(dayBucket.Get(ed.ref.key), ed.old) {
				continue // retention dropped it; blocks are otherwise never changed
			}
			removed += ed.erased
			if ed.new == nil {
				deleted++
				if err := dayBucket.Delete(ed.ref.key); err != nil {
					return err
				}
				continue
			}
			rewritten++
			if err := dayBucket.Put(ed.ref.key, ed.new); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	res.RawRecords += removed
	res.BlocksRewritten += rewritten
	res.BlocksDeleted += deleted
	return nil
}

// deleteCells deletes the hourly and daily cells of the values req names
// (see EraseRequest.Rollups), at most eraseBatchCells per transaction.
func (e *Eraser) deleteCells(ctx context.Context, req EraseRequest, keysSeen map[string]bool, res *EraseResult) error {
	type value struct {
		dim  Dimension
		name string
	}
	var values []value
	if req.KeyID != "" {
		values = append(values, value{DimKey, req.KeyID})
		res.KeyIDs = []string{req.KeyID}
	} else {
		values = append(values, value{DimOwner, req.OwnerID})
		for _, id := range req.KeyIDs {
			keysSeen[id] = true
		}
		for id := range keysSeen {
			values = append(values, value{DimKey, id})
			res.KeyIDs = append(res.KeyIDs, id)
		}
		slices.Sort(res.KeyIDs)
	}
	for _, iv := range []Interval{Hourly, Daily} {
		for _, v := range values {
			prefix := appendValuePrefix(nil, v.dim, v.name)
			for {
				if err := ctx.Err(); err != nil {
					return err
				}
				n := 0
				err := e.st.Update(func(tx *store.Tx) error {
					n = 0
					b, err := tx.MustBucket(iv.bucket())
					if err != nil {
						return err
					}
					var victims [][]byte
					c := b.Cursor()
					for k, _ := c.Seek(prefix); k != nil && len(victims) < eraseBatchCells; k, _ = c.Next() {
						// A value's cells are its prefix and a 4-byte interval.
						if len(k) != len(prefix)+4 || !bytes.HasPrefix(k, prefix) {
							break
						}
						victims = append(victims, bytes.Clone(k))
					}
					for _, k := range victims {
						if err := b.Delete(k); err != nil {
							return err
						}
					}
					n = len(victims)
					return nil
				})
				if err != nil {
					return fmt.Errorf("metrics: erase: delete %s cells: %w", iv, err)
				}
				res.RollupCells += n
				if n < eraseBatchCells {
					break
				}
			}
		}
	}
	return nil
}
