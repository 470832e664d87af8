package metrics

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// Shipping hooks (cluster/ship.go). Every raw block is written under the
// next value of the raw bucket's sequence, in the transaction of its flush,
// so the block sequence is a per-file batch number that only grows and
// never names two blocks: a shipper that remembers the last sequence it
// shipped (the ship cursor, kept in store.BucketMeta) knows exactly what
// is left, across crashes. In cluster mode the blocks after the cursor are
// the spool: the shipper deletes what PostgreSQL confirmed and bounds the
// rest (spool.go).

// keyShipCursor is the ship cursor's key in store.BucketMeta: the last
// block sequence shipped, 8 bytes big-endian.
var keyShipCursor = []byte("ship_cursor")

// Batch is one raw block: records one flush committed for one UTC day, in
// time order, under its block sequence. A block that cannot be decoded is
// a Batch with Corrupt set (wrapping ErrCorruptBlock and naming its day
// and sequence) and no Records, so a shipper can name it and move past
// it instead of stalling on it.
type Batch struct {
	Seq     uint64
	Records []Record
	Corrupt error
}

// Backlog describes what waits to ship: the blocks after the ship cursor
// and the rollup cells changed since they last shipped (dirty.go).
type Backlog struct {
	Records int       // raw records in them
	Oldest  time.Time // the earliest record time among them; zero when Records is 0
	Cells   int       // changed cells waiting; 0 without MarkChangedCells
}

// ShipCursor returns the last block sequence marked shipped (0 when none).
func (r *Reader) ShipCursor() (uint64, error) {
	var seq uint64
	err := r.st.View(func(tx *store.Tx) error {
		seq = readShipCursor(tx)
		return nil
	})
	return seq, err
}

func readShipCursor(tx *store.Tx) uint64 { return readMetaUint64(tx, keyShipCursor) }

// SetShipCursor records seq as the last block sequence shipped, in its
// own transaction. It never moves the cursor back: a smaller seq is a no-op.
func (r *Reader) SetShipCursor(seq uint64) error {
	return r.st.Update(func(tx *store.Tx) error {
		if seq <= readShipCursor(tx) {
			return nil
		}
		meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyShipCursor, binary.BigEndian.AppendUint64(nil, seq))
	})
}

// BatchesAfter returns, in sequence order, the raw blocks with a sequence
// above after, decoded, stopping before the block that would take the
// total over maxRecords (the first block is always returned). A block
// that does not decode (ErrCorruptBlock) comes back as a Batch with
// Corrupt set, counting no records; any other error ends the call. It reads
// one snapshot: a flush that commits meanwhile only ever adds larger
// sequences, so a caller that ships the result and then moves its cursor
// to the last Seq skips nothing.
func (r *Reader) BatchesAfter(ctx context.Context, after uint64, maxRecords int) ([]Batch, error) {
	var out []Batch
	err := r.st.View(func(tx *store.Tx) error {
		var err error
		out, err = r.batchesAfter(ctx, tx, after, maxRecords)
		return err
	})
	return out, err
}

// batchesAfter is BatchesAfter inside tx.
func (r *Reader) batchesAfter(ctx context.Context, tx *store.Tx, after uint64, maxRecords int) ([]Batch, error) {
	var out []Batch
	dec, _ := r.decoders.Get().(*blockDecoder)
	if dec == nil {
		dec = new(blockDecoder)
	}
	defer r.decoders.Put(dec)
	resolve := r.dict.resolver(tx)
	corrupt := func(seq uint64, err error) { out = append(out, Batch{Seq: seq, Corrupt: err}) }
	err := boundedBlocksAfter(ctx, tx, after, maxRecords, corrupt, func(day uint32, seq uint64, v []byte, h blockHeader) error {
		recs, err := dec.decode(v, resolve, make([]Record, 0, h.count))
		if errors.Is(err, ErrCorruptBlock) {
			corrupt(seq, blockError(err, day, seq))
			return nil
		}
		if err != nil {
			return blockError(err, day, seq)
		}
		out = append(out, Batch{Seq: seq, Records: recs})
		return nil
	})
	return out, err
}

// BatchSize is a raw block's sequence and record count.
type BatchSize struct {
	Seq     uint64
	Records int
}

// BatchSizesAfter is BatchesAfter reading block headers only: the
// sequence and record count of each block it would return.
func (r *Reader) BatchSizesAfter(ctx context.Context, after uint64, maxRecords int) ([]BatchSize, error) {
	var out []BatchSize
	err := r.st.View(func(tx *store.Tx) error {
		return boundedBlocksAfter(ctx, tx, after, maxRecords, nil, func(_ uint32, seq uint64, _ []byte, h blockHeader) error {
			out = append(out, BatchSize{Seq: seq, Records: h.count})
			return nil
		})
	})
	return out, err
}

// boundedBlocksAfter calls fn with the header of every raw block after
// the sequence after, in sequence order, stopping before the block that
// would take the records over maxRecords (the first is always visited),
// at fn's first error, or when ctx ends. A block whose header does not
// decode goes to corrupt instead, counting no records, or, when corrupt
// is nil, ends the walk with its error.
func boundedBlocksAfter(ctx context.Context, tx *store.Tx, after uint64, maxRecords int,
	corrupt func(seq uint64, err error), fn func(day uint32, seq uint64, v []byte, h blockHeader) error) error {
	total, visited := 0, 0
	return blocksAfter(tx, after, func(day uint32, seq uint64, v []byte) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		h, _, err := parseBlockHeader(v)
		if err != nil && corrupt != nil {
			corrupt(seq, blockError(err, day, seq))
			visited++
			return true, nil
		}
		if err != nil {
			return false, blockError(err, day, seq)
		}
		if visited > 0 && total+h.count > maxRecords {
			return false, nil
		}
		if err := fn(day, seq, v, h); err != nil {
			return false, err
		}
		total, visited = total+h.count, visited+1
		return true, nil
	})
}

// ShipBacklog counts the records in the blocks after the ship cursor,
// reading block headers only, and the changed cells waiting, reading the
// page headers of their bucket (about 11 ms for a million cells, measured
// in docs/BENCHMARKS.md; a few thousand wait between rounds). A block whose
// header does not decode counts no records: shipping skips it. It reads
// one snapshot and is safe to call concurrently with writes.
func (r *Reader) ShipBacklog() (Backlog, error) {
	var b Backlog
	err := r.st.View(func(tx *store.Tx) error {
		if dirty := tx.Bucket(store.BucketRollupDirty); dirty != nil {
			b.Cells = dirty.KeyN()
		}
		return blocksAfter(tx, readShipCursor(tx), func(_ uint32, _ uint64, v []byte) (bool, error) {
			h, _, err := parseBlockHeader(v)
			if err != nil {
				return true, nil
			}
			if t := time.UnixMicro(h.minTime).UTC(); h.count > 0 && (b.Records == 0 || t.Before(b.Oldest)) {
				b.Oldest = t
			}
			b.Records += h.count
			return true, nil
		})
	})
	return b, err
}

// blocksAfter calls fn for every raw block with a sequence above after, in
// sequence order, until fn returns false or an error. Blocks of one flush
// can fall into several day buckets, so it merges the days' runs: each
// day bucket's keys grow with the sequence.
func blocksAfter(tx *store.Tx, after uint64, fn func(day uint32, seq uint64, v []byte) (bool, error)) error {
	raw, err := tx.MustBucket(store.BucketRaw)
	if err != nil {
		return err
	}
	type run struct {
		day  uint32
		c    *store.Cursor
		k, v []byte
	}
	var runs []*run
	start := blockKey(after + 1)
	rc := raw.Cursor()
	for k, v := rc.First(); k != nil; k, v = rc.Next() {
		if v != nil {
			continue
		}
		day, ok := parseDayName(k)
		b := raw.Bucket(k)
		if !ok || b == nil {
			continue
		}
		c := b.Cursor()
		bk, bv := c.Seek(start)
		for bk != nil && (bv == nil || len(bk) != 8) {
			bk, bv = c.Next()
		}
		if bk != nil {
			runs = append(runs, &run{day: day, c: c, k: bk, v: bv})
		}
	}
	for len(runs) > 0 {
		first := 0
		for i := 1; i < len(runs); i++ {
			if bytes.Compare(runs[i].k, runs[first].k) < 0 {
				first = i
			}
		}
		ru := runs[first]
		more, err := fn(ru.day, binary.BigEndian.Uint64(ru.k), ru.v)
		if err != nil || !more {
			return err
		}
		ru.k, ru.v = ru.c.Next()
		for ru.k != nil && (ru.v == nil || len(ru.k) != 8) {
			ru.k, ru.v = ru.c.Next()
		}
		if ru.k == nil {
			runs = append(runs[:first], runs[first+1:]...)
		}
	}
	return nil
}
