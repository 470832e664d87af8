package metrics

import (
	"encoding/binary"
	"fmt"

	"github.com/apiwarden/apiwarden/store"
)

// The erasure mark (cluster mode): the highest id of the cluster's
// erasures (apiwarden_erasures) this data file has applied, so a follower
// that was stopped or cut off from PostgreSQL applies the ones it missed
// (cluster/erase_follow.go). It is kept beside the ship cursor because it
// describes this file's content, not the instance: a new file starts its
// own.

// keyErasureMark is the erasure mark's key in store.BucketMeta, 8 bytes
// big-endian; absent until a follower first starts on the file.
var keyErasureMark = []byte("erasure_mark")

// LoadErasureMark returns the file's erasure mark, setting it first when the
// file has none: to latest (the highest erasure id on record) when the
// file holds no usage data, raw or rolled up, since those erasures cover
// nothing in a new file; to 0 when it does (a file from before marks
// were kept: any erasure still on record may cover some of it). It
// flushes the Recorder first, so the records it holds count. The check
// and the setting are one transaction, so a flush cannot slip between
// them; read latest before calling, so an erasure committed meanwhile
// stays above the mark.
func (e *Eraser) LoadErasureMark(latest int64) (int64, error) {
	if e.flush != nil {
		if err := e.flush(); err != nil {
			return 0, fmt.Errorf("metrics: erasure mark: flush first: %w", err)
		}
	}
	var mark int64
	err := e.st.Update(func(tx *store.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyErasureMark); len(v) == 8 {
			mark = int64(binary.BigEndian.Uint64(v))
			return nil
		}
		mark = 0
		if !holdsUsage(tx) {
			mark = max(latest, 0)
		}
		return meta.Put(keyErasureMark, binary.BigEndian.AppendUint64(nil, uint64(mark)))
	})
	if err != nil {
		return 0, fmt.Errorf("metrics: erasure mark: %w", err)
	}
	return mark, nil
}

// ErasureMark returns the file's erasure mark, and whether it is set: it
// is not before a follower first started on the file.
func (r *Reader) ErasureMark() (mark int64, set bool, err error) {
	err = r.st.View(func(tx *store.Tx) error {
		set = tx.Bucket(store.BucketMeta) != nil && len(tx.Bucket(store.BucketMeta).Get(keyErasureMark)) == 8
		mark = int64(readMetaUint64(tx, keyErasureMark))
		return nil
	})
	return mark, set, err
}

// SetErasureMark records that the erasure id has been applied to the
// file, in its own transaction. It never moves the mark back.
func (e *Eraser) SetErasureMark(id int64) error {
	err := e.st.Update(func(tx *store.Tx) error {
		if id <= int64(readMetaUint64(tx, keyErasureMark)) {
			return nil
		}
		meta, err := tx.CreateBucketIfNotExists(store.BucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyErasureMark, binary.BigEndian.AppendUint64(nil, uint64(id)))
	})
	if err != nil {
		return fmt.Errorf("metrics: set erasure mark: %w", err)
	}
	return nil
}

// holdsUsage reports whether tx's file holds a raw block or a rollup cell.
func holdsUsage(tx *store.Tx) bool {
	if raw := tx.Bucket(store.BucketRaw); raw != nil {
		c := raw.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if day := raw.Bucket(k); v == nil && day != nil {
				if dk, _ := day.Cursor().First(); dk != nil {
					return true
				}
			}
		}
	}
	for _, name := range [][]byte{store.BucketRollupHour, store.BucketRollupDay} {
		if b := tx.Bucket(name); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				return true
			}
		}
	}
	return false
}
