package metrics

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// Changed cells, for shipping rollups (cluster/ship.go). With
// Options.MarkChangedCells every flush also writes, in its own
// transaction, the key of each cell it changed into
// store.BucketRollupDirty with the flush's generation: the next value of
// that bucket's sequence, so generations only grow. A shipper reads the
// dirty keys with the cells' absolute values (Reader.ShipWork), writes the
// values to PostgreSQL and then clears the keys (Reader.ClearShippedCells)
// only where the generation is still the one it read: a cell a flush
// changed in between stays dirty and ships again with its new value.
// Since a shipped value is absolute, shipping a cell twice (a crash
// before the clear) writes the same value twice, never a double count.
//
// The bucket is created by the first flush that marks cells, which also
// starts marking every cell the file holds already, so an instance that
// was single, or ran an older version, ships its earlier rollups too:
// cellsBackfillStep cells a flush, from a position kept in
// store.BucketMeta, so a file of millions of cells never makes one huge
// transaction.
// Retention deletes a cell's dirty key with the cell.

// cellsBackfillStep bounds the stored cells one flush marks while the
// marking of the cells from before the bucket existed goes on.
const cellsBackfillStep = 20000

// keyCellsBackfill is, in store.BucketMeta, the dirty key of the next
// stored cell to mark; absent once every cell is marked.
var keyCellsBackfill = []byte("cells_backfill")

// DirtyCell is a rollup cell changed since a shipper last cleared it, as
// Reader.ShipWork read it.
type DirtyCell struct {
	Interval  Interval
	Dimension Dimension
	Value     string
	Start     time.Time // start of the UTC hour or day
	// Count is the cell's request count; Cell its encoding
	// (Cell.AppendBinary), the absolute value in the data file. Cell is
	// nil when the cell is gone (retention deleted it, or it no longer
	// decodes): there is nothing to ship, only the key to clear.
	Count      uint64
	Cell       []byte
	Generation uint64 // the flush that last changed it
	key        []byte // its key in store.BucketRollupDirty
}

// ShipQuery selects the work of one shipping round.
type ShipQuery struct {
	After      uint64 // the ship cursor: raw blocks after it
	MaxRecords int    // bound on the records, as BatchesAfter's maxRecords
	MaxCells   int    // bound on the dirty cells; 0 reads none
	// CellsFrom is the previous round's ShipWork.CellsResume: the scan
	// of dirty keys goes on from there and wraps around, so a round
	// bound does not starve the keys that sort last. nil starts at the
	// first key.
	CellsFrom []byte
}

// ShipWork is what one shipping round copies to PostgreSQL.
type ShipWork struct {
	Batches []Batch
	Cells   []DirtyCell
	// CellsResume is where the next round's scan of dirty keys starts;
	// nil when this round read every dirty key.
	CellsResume []byte
}

// ShipWork reads, in one read transaction, the raw blocks after q.After
// (as BatchesAfter does) and up to q.MaxCells dirty cells with their
// current values and generations. It returns ErrCorruptBlock for a block
// it cannot decode and ctx's error when ctx ends.
func (r *Reader) ShipWork(ctx context.Context, q ShipQuery) (ShipWork, error) {
	var w ShipWork
	err := r.st.View(func(tx *store.Tx) error {
		var err error
		if w.Batches, err = r.batchesAfter(ctx, tx, q.After, q.MaxRecords); err != nil {
			return err
		}
		w.Cells, w.CellsResume = dirtyCells(tx, q.CellsFrom, q.MaxCells)
		return nil
	})
	return w, err
}

// dirtyCells reads up to max dirty cells from the key from on, wrapping
// around to the first key, and returns the key to resume at (nil when it
// read them all).
func dirtyCells(tx *store.Tx, from []byte, max int) ([]DirtyCell, []byte) {
	dirty := tx.Bucket(store.BucketRollupDirty)
	if dirty == nil || max <= 0 {
		return nil, nil
	}
	var out []DirtyCell
	var scratch Cell
	c := dirty.Cursor()
	var k, v []byte
	if len(from) > 0 {
		k, v = c.Seek(from)
	} else {
		k, v = c.First()
	}
	wrapped := len(from) == 0
	for {
		switch {
		case k == nil && wrapped:
			return out, nil
		case k == nil:
			wrapped = true
			k, v = c.First()
			continue
		case wrapped && len(from) > 0 && bytes.Compare(k, from) >= 0:
			return out, nil
		case len(out) == max:
			return out, bytes.Clone(k)
		}
		out = append(out, readDirtyCell(tx, k, v, &scratch))
		k, v = c.Next()
	}
}

// readDirtyCell looks up the cell a dirty key names; a key this package
// did not write, or a cell that is gone, comes back with a nil Cell.
func readDirtyCell(tx *store.Tx, k, gen []byte, scratch *Cell) DirtyCell {
	d := DirtyCell{key: bytes.Clone(k)}
	if len(gen) == 8 {
		d.Generation = binary.BigEndian.Uint64(gen)
	}
	if len(k) < 1 {
		return d
	}
	iv := Interval(k[0])
	dim, value, n, ok := parseCellKey(k[1:])
	if !ok || !iv.valid() || !dim.valid() {
		return d
	}
	d.Interval, d.Dimension, d.Value, d.Start = iv, dim, string(value), iv.start(n)
	b := tx.Bucket(iv.bucket())
	if b == nil {
		return d
	}
	if enc := b.Get(k[1:]); enc != nil && scratch.decode(enc) == nil {
		d.Cell, d.Count = bytes.Clone(enc), scratch.Count
	}
	return d
}

// ClearShippedCells removes the dirty keys of cells, in one transaction,
// each only if its generation is still the one ShipWork read (a cell a
// flush changed since stays dirty). It returns how many it removed, and
// the store's error, wrapped.
func (r *Reader) ClearShippedCells(cells []DirtyCell) (int, error) {
	if len(cells) == 0 {
		return 0, nil
	}
	cleared := 0
	err := r.st.Update(func(tx *store.Tx) error {
		cleared = 0
		dirty := tx.Bucket(store.BucketRollupDirty)
		if dirty == nil {
			return nil
		}
		for _, d := range cells {
			if cur := dirty.Get(d.key); len(cur) != 8 || binary.BigEndian.Uint64(cur) != d.Generation {
				continue
			}
			if err := dirty.Delete(d.key); err != nil {
				return err
			}
			cleared++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("metrics: clear shipped cells: %w", err)
	}
	return cleared, nil
}

// DirtyCellCount counts the cells waiting to ship, as ShipBacklog's
// Cells does.
func (r *Reader) DirtyCellCount() (int, error) {
	n := 0
	err := r.st.View(func(tx *store.Tx) error {
		if dirty := tx.Bucket(store.BucketRollupDirty); dirty != nil {
			n = dirty.KeyN()
		}
		return nil
	})
	return n, err
}

// dirtyKey appends the key of a cell in store.BucketRollupDirty: the
// interval byte, then the cell key.
func dirtyKey(b []byte, iv Interval, cellKey []byte) []byte {
	return append(append(b, byte(iv)), cellKey...)
}

// markDirty marks every cell the prepared writes changed with a new
// generation, creating the bucket the first time, and marks the next
// stored cells while the backfill goes on. Keys and values live in the
// writer's arena until the transaction ends.
func (w *rollupWriter) markDirty(tx *store.Tx) error {
	dirty := tx.Bucket(store.BucketRollupDirty)
	if dirty == nil {
		var err error
		if dirty, err = tx.CreateBucketIfNotExists(store.BucketRollupDirty); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyCellsBackfill, []byte{byte(Hourly)}); err != nil {
			return err
		}
	}
	gen, err := dirty.NextSequence()
	if err != nil {
		return err
	}
	start := len(w.arena)
	w.arena = binary.BigEndian.AppendUint64(w.arena, gen)
	value := w.arena[start:len(w.arena):len(w.arena)]
	for _, set := range [...]struct {
		iv     Interval
		writes []cellWrite
	}{{Hourly, w.hours}, {Daily, w.days}} {
		for _, cw := range set.writes {
			start := len(w.arena)
			w.arena = dirtyKey(w.arena, set.iv, cw.key)
			if err := dirty.Put(w.arena[start:len(w.arena):len(w.arena)], value); err != nil {
				return fmt.Errorf("metrics: mark changed cell: %w", err)
			}
		}
	}
	return backfillDirty(tx, dirty, value, w.backfillStep)
}

// backfillDirty marks up to step stored cells from the backfill position
// on and moves the position past them, or removes it after the last.
func backfillDirty(tx *store.Tx, dirty *store.Bucket, value []byte, step int) error {
	meta := tx.Bucket(store.BucketMeta)
	if meta == nil {
		return nil
	}
	from := bytes.Clone(meta.Get(keyCellsBackfill))
	if len(from) == 0 {
		return nil
	}
	marked := 0
	for _, iv := range [...]Interval{Hourly, Daily} {
		b := tx.Bucket(iv.bucket())
		if byte(iv) < from[0] || b == nil {
			continue
		}
		c := b.Cursor()
		k, _ := c.First()
		if byte(iv) == from[0] && len(from) > 1 {
			k, _ = c.Seek(from[1:])
		}
		for ; k != nil; k, _ = c.Next() {
			if marked == step {
				return meta.Put(keyCellsBackfill, dirtyKey(nil, iv, k))
			}
			if err := dirty.Put(dirtyKey(nil, iv, k), value); err != nil {
				return fmt.Errorf("metrics: mark stored cell: %w", err)
			}
			marked++
		}
	}
	return meta.Delete(keyCellsBackfill)
}

// forgetDirty removes the dirty keys of cells of iv that retention
// deletes, in its transaction, so no key names a cell that is gone.
func forgetDirty(tx *store.Tx, iv Interval, cellKeys [][]byte) error {
	dirty := tx.Bucket(store.BucketRollupDirty)
	if dirty == nil {
		return nil
	}
	var key []byte
	for _, k := range cellKeys {
		key = dirtyKey(key[:0], iv, k)
		if err := dirty.Delete(key); err != nil {
			return err
		}
	}
	return nil
}
