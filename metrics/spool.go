package metrics

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// The spool (cluster mode): the raw blocks after the ship cursor. Blocks
// PostgreSQL has confirmed are deleted (TrimShipped) and the unshipped
// ones are bounded (DropUnshipped), both in transactions of at most
// spoolBatch block deletions, so a flush waits for the write lock no
// longer than that: deleting a block frees its pages and decodes nothing.
// Rollup cells are never touched here.
const spoolBatch = 256

// keyShipDropped is the key in store.BucketMeta of the records
// DropUnshipped deleted over the file's life, 8 bytes big-endian.
var keyShipDropped = []byte("ship_dropped")

// SpoolDrop says what one DropUnshipped call deleted.
type SpoolDrop struct {
	Blocks, Records int
	// From and To are the earliest and latest record time among the
	// deleted blocks; zero when none was deleted.
	From, To time.Time
}

// spoolBlock is a raw block as a block header describes it.
type spoolBlock struct {
	day      []byte // its day bucket's name
	seq      uint64
	count    int
	min, max int64 // record times, µs since the epoch
}

// TrimShipped deletes every raw block with a sequence up to upTo (the ship
// cursor, once PostgreSQL holds those blocks) and returns how many it
// deleted. It works in transactions of at most spoolBatch deletions and
// may be called while a Recorder flushes: flushes only add blocks with
// larger sequences. When ctx ends it stops, returning ctx.Err(); what it
// deleted stays deleted and the next call goes on from there.
func (r *Reader) TrimShipped(ctx context.Context, upTo uint64) (int, error) {
	deleted := 0
	for {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		n := 0
		err := r.st.Update(func(tx *store.Tx) error {
			raw, err := tx.MustBucket(store.BucketRaw)
			if err != nil {
				return err
			}
			victims := shippedBlocks(raw, upTo, spoolBatch)
			n = len(victims)
			return deleteBlocks(raw, victims)
		})
		if err != nil {
			return deleted, fmt.Errorf("metrics: trim shipped raw blocks: %w", err)
		}
		deleted += n
		if n < spoolBatch {
			return deleted, nil
		}
	}
}

// shippedBlocks lists up to limit blocks with a sequence up to upTo. Each
// day bucket's keys grow with the sequence, so they are at the front of
// each day.
func shippedBlocks(raw *store.Bucket, upTo uint64, limit int) []spoolBlock {
	var out []spoolBlock
	rc := raw.Cursor()
	for k, v := rc.First(); k != nil && len(out) < limit; k, v = rc.Next() {
		day := raw.Bucket(k)
		if v != nil || day == nil {
			continue
		}
		c := day.Cursor()
		for bk, bv := c.First(); bk != nil && len(out) < limit; bk, bv = c.Next() {
			if bv == nil || len(bk) != 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(bk)
			if seq > upTo {
				break
			}
			out = append(out, spoolBlock{day: bytes.Clone(k), seq: seq})
		}
	}
	return out
}

// deleteBlocks deletes the blocks named, in one transaction.
func deleteBlocks(raw *store.Bucket, blocks []spoolBlock) error {
	for _, b := range blocks {
		day := raw.Bucket(b.day)
		if day == nil {
			continue
		}
		if err := day.Delete(blockKey(b.seq)); err != nil {
			return err
		}
	}
	return nil
}

// DropUnshipped bounds the spool: when the blocks after the ship cursor
// hold more than maxRecords records, it deletes the oldest of them (by
// sequence, whole blocks) until no more than maxRecords are left, adds
// their records to the file's dropped total (ShipDropped) in the same
// transactions, and says what it deleted. Blocks whose header does not
// decode count no records and are left to shipping, which skips them.
//
// It must not run at the same time as a round that ships blocks it could
// pick: call it from the goroutine that ships. A block the cursor has
// passed by the time of deleting is left alone. Like TrimShipped it works
// in transactions of at most spoolBatch deletions, and stops when ctx
// ends, returning ctx.Err() and what it had deleted.
func (r *Reader) DropUnshipped(ctx context.Context, maxRecords int) (SpoolDrop, error) {
	var res SpoolDrop
	victims, err := r.overBound(maxRecords)
	if err != nil || len(victims) == 0 {
		return res, err
	}
	for len(victims) > 0 {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		batch := victims[:min(len(victims), spoolBatch)]
		victims = victims[len(batch):]
		var gone []spoolBlock
		err := r.st.Update(func(tx *store.Tx) error {
			raw, err := tx.MustBucket(store.BucketRaw)
			if err != nil {
				return err
			}
			cursor := readShipCursor(tx)
			gone = gone[:0]
			records := 0
			for _, b := range batch {
				if day := raw.Bucket(b.day); b.seq > cursor && day != nil && day.Get(blockKey(b.seq)) != nil {
					gone = append(gone, b)
					records += b.count
				}
			}
			if err := deleteBlocks(raw, gone); err != nil {
				return err
			}
			return addShipDropped(tx, uint64(records))
		})
		if err != nil {
			return res, fmt.Errorf("metrics: drop unshipped raw blocks: %w", err)
		}
		for _, b := range gone {
			res.add(b)
		}
	}
	return res, nil
}

// overBound lists, oldest first, the blocks after the ship cursor that
// must go for the rest to hold at most maxRecords records.
func (r *Reader) overBound(maxRecords int) ([]spoolBlock, error) {
	var waiting []spoolBlock
	total := 0
	err := r.st.View(func(tx *store.Tx) error {
		return blocksAfter(tx, readShipCursor(tx), func(day uint32, seq uint64, v []byte) (bool, error) {
			h, _, err := parseBlockHeader(v)
			if err != nil {
				return true, nil
			}
			waiting = append(waiting, spoolBlock{day: dayName(day), seq: seq, count: h.count, min: h.minTime, max: h.maxTime})
			total += h.count
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: read the spool: %w", err)
	}
	n := 0
	for total > maxRecords && n < len(waiting) {
		total -= waiting[n].count
		n++
	}
	return waiting[:n], nil
}

// add counts block b into d.
func (d *SpoolDrop) add(b spoolBlock) {
	from, to := time.UnixMicro(b.min).UTC(), time.UnixMicro(b.max).UTC()
	if d.Blocks == 0 || from.Before(d.From) {
		d.From = from
	}
	if d.Blocks == 0 || to.After(d.To) {
		d.To = to
	}
	d.Blocks++
	d.Records += b.count
}

// addShipDropped adds n to the file's dropped total.
func addShipDropped(tx *store.Tx, n uint64) error {
	if n == 0 {
		return nil
	}
	meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
	if err != nil {
		return err
	}
	return meta.Put(keyShipDropped, binary.BigEndian.AppendUint64(nil, readShipDropped(tx)+n))
}

func readShipDropped(tx *store.Tx) uint64 { return readMetaUint64(tx, keyShipDropped) }

// readMetaUint64 reads an 8-byte big-endian counter from store.BucketMeta;
// 0 when it is absent.
func readMetaUint64(tx *store.Tx, key []byte) uint64 {
	meta := tx.Bucket(store.BucketMeta)
	if meta == nil {
		return 0
	}
	if v := meta.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// ShipDropped returns how many unshipped records DropUnshipped deleted
// from this data file over its life.
func (r *Reader) ShipDropped() (uint64, error) {
	var n uint64
	err := r.st.View(func(tx *store.Tx) error {
		n = readShipDropped(tx)
		return nil
	})
	return n, err
}
