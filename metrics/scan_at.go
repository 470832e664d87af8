package metrics

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// ScanCellsAt calls fn for every stored cell of every value of dim whose
// interval starts at one of at (ascending, without repeats), value by value
// and by time within a value, like ScanCells with AllValues. Where
// ScanCells walks one range, this visits each value once and seeks
// straight to each wanted interval: n scattered hours cost about n seeks
// per value instead of 2n for n ranges. The alert evaluator reads the same
// hour of four past weeks and the latest hours this way. c is reused
// between calls. It returns ErrBadQuery for an invalid interval or
// dimension or unordered times, the first error fn returns, or
// ErrCorruptCell.
func (r *Reader) ScanCellsAt(ctx context.Context, interval Interval, dim Dimension, at []time.Time, fn func(value string, start time.Time, c *Cell) error) error {
	if !interval.valid() {
		return fmt.Errorf("%w: interval %v", ErrBadQuery, interval)
	}
	if !dim.valid() {
		return fmt.Errorf("%w: dimension %v", ErrBadQuery, dim)
	}
	wanted := make([]uint32, 0, len(at))
	for _, t := range at {
		n := interval.number(t)
		if len(wanted) > 0 && n <= wanted[len(wanted)-1] {
			return fmt.Errorf("%w: times must be ascending intervals without repeats, %s is not after the one before", ErrBadQuery, t)
		}
		wanted = append(wanted, n)
	}
	if len(wanted) == 0 {
		return nil
	}
	return r.st.View(func(tx *store.Tx) error {
		b, err := tx.MustBucket(interval.bucket())
		if err != nil {
			return err
		}
		w := cellWalker{c: b.Cursor(), dim: dim}
		var (
			cell    Cell
			value   string
			visited int
		)
		k, v := w.c.Seek([]byte{byte(dim)})
		for k != nil && k[0] == byte(dim) {
			if visited++; visited%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			_, raw, n, ok := parseCellKey(k)
			if !ok {
				k, v = w.c.Next()
				continue
			}
			i := 0
			for i < len(wanted) && wanted[i] < n {
				i++
			}
			switch {
			case i == len(wanted):
				k, v = w.nextValue(raw)
				continue
			case wanted[i] != n:
				k, v = w.seek(raw, wanted[i])
				continue
			}
			if !bytes.Equal(raw, w.last) {
				value = string(raw)
				w.last = append(w.last[:0], raw...)
			}
			if err := cell.decode(v); err != nil {
				return fmt.Errorf("%w (cell %s %q %s)", err, dim, value, interval.start(n))
			}
			if err := fn(value, interval.start(n), &cell); err != nil {
				return err
			}
			k, v = w.c.Next()
		}
		return ctx.Err()
	})
}

// cellWalker moves a cursor over one dimension's cells without
// allocating per move.
type cellWalker struct {
	c    *store.Cursor
	dim  Dimension
	key  []byte // the seek key being built
	cur  []byte // the value being left, copied
	last []byte // the value last passed to fn
}

// seek moves to the first cell of value at or after interval n.
func (w *cellWalker) seek(value []byte, n uint32) ([]byte, []byte) {
	w.key = w.appendPrefix(w.key[:0], value)
	w.key = binary.BigEndian.AppendUint32(w.key, n)
	return w.c.Seek(w.key)
}

// nextValue moves to the first cell of the value after this one. The
// next value is usually a step or two away (past the hour in progress),
// so it steps before it seeks.
func (w *cellWalker) nextValue(value []byte) ([]byte, []byte) {
	w.cur = append(w.cur[:0], value...)
	for range 3 {
		k, v := w.c.Next()
		if k == nil || k[0] != byte(w.dim) {
			return k, v
		}
		if _, raw, _, ok := parseCellKey(k); !ok || !bytes.Equal(raw, w.cur) {
			return k, v
		}
	}
	// Past every cell of the value: its keys are prefix + 4 bytes.
	w.key = append(w.appendPrefix(w.key[:0], w.cur), 0xff, 0xff, 0xff, 0xff, 0xff)
	return w.c.Seek(w.key)
}

func (w *cellWalker) appendPrefix(b, value []byte) []byte {
	b = append(b, byte(w.dim))
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}
