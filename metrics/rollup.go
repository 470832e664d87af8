package metrics

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// Dimension is what a rollup cell is counted by.
type Dimension uint8

// The dimensions. Every record counts in DimTotal (value "") and in
// DimStatusClass ("1xx" … "5xx"); it counts in DimRoute, DimKey, DimOwner and
// DimTier only when it carries a non-empty value for them, so a public
// request without a key adds nothing to DimKey.
const (
	DimTotal       Dimension = 1 + iota // one value, ""
	DimRoute                            // Record.Route
	DimKey                              // Record.KeyID
	DimOwner                            // Record.OwnerID
	DimTier                             // Record.Tier
	DimStatusClass                      // "1xx", "2xx", "3xx", "4xx", "5xx"
	dimensionEnd
)

// Dimensions lists every dimension in key order.
var Dimensions = []Dimension{DimTotal, DimRoute, DimKey, DimOwner, DimTier, DimStatusClass}

var dimensionNames = [dimensionEnd]string{"", "total", "route", "key", "owner", "tier", "status_class"}

// String returns the dimension's name as the analytics API spells it.
func (d Dimension) String() string {
	if d > 0 && d < dimensionEnd {
		return dimensionNames[d]
	}
	return fmt.Sprintf("Dimension(%d)", uint8(d))
}

// ParseDimension parses a name as String returns it; "key_id", "owner_id"
// and "status" are accepted as aliases. Anything else is ErrUnknownName.
func ParseDimension(s string) (Dimension, error) {
	switch s {
	case "key_id":
		return DimKey, nil
	case "owner_id":
		return DimOwner, nil
	case "status":
		return DimStatusClass, nil
	}
	for d := DimTotal; d < dimensionEnd; d++ {
		if dimensionNames[d] == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%w: dimension %q (want one of %s)", ErrUnknownName, s,
		strings.Join(dimensionNames[1:], ", "))
}

func (d Dimension) valid() bool { return d > 0 && d < dimensionEnd }

var statusClassNames = [6]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Interval is the width of a rollup cell. Both are aligned to UTC, so a day
// in any timezone is the sum of its 24 (23, 25) UTC hours.
type Interval uint8

// The intervals.
const (
	Hourly Interval = 1 + iota // one UTC hour
	Daily                      // one UTC day
)

// String returns "hour" or "day".
func (iv Interval) String() string {
	switch iv {
	case Hourly:
		return "hour"
	case Daily:
		return "day"
	}
	return fmt.Sprintf("Interval(%d)", uint8(iv))
}

// ParseInterval parses "hour" or "day" (also "hourly", "daily").
func ParseInterval(s string) (Interval, error) {
	switch s {
	case "hour", "hourly":
		return Hourly, nil
	case "day", "daily":
		return Daily, nil
	}
	return 0, fmt.Errorf("%w: interval %q (want hour or day)", ErrUnknownName, s)
}

// Duration returns the width of the interval.
func (iv Interval) Duration() time.Duration {
	if iv == Daily {
		return 24 * time.Hour
	}
	return time.Hour
}

// Truncate returns the start of the UTC interval that holds t.
func (iv Interval) Truncate(t time.Time) time.Time {
	return iv.start(iv.number(t))
}

// number is the interval's count since the Unix epoch (hours or days),
// clamped to what a uint32 holds.
func (iv Interval) number(t time.Time) uint32 {
	sec := t.Unix()
	if sec < 0 {
		return 0
	}
	n := sec / int64(iv.Duration()/time.Second)
	return uint32(min(n, 1<<32-1))
}

func (iv Interval) start(n uint32) time.Time {
	return time.Unix(int64(n)*int64(iv.Duration()/time.Second), 0).UTC()
}

func (iv Interval) valid() bool { return iv == Hourly || iv == Daily }

func (iv Interval) bucket() []byte {
	if iv == Daily {
		return store.BucketRollupDay
	}
	return store.BucketRollupHour
}

// appendCellKey appends the key of a rollup cell (layout in the package
// doc): dimension byte, uvarint value length, value, 4-byte big-endian
// interval number.
func appendCellKey(b []byte, dim Dimension, value string, n uint32) []byte {
	b = appendValuePrefix(b, dim, value)
	return binary.BigEndian.AppendUint32(b, n)
}

func appendValuePrefix(b []byte, dim Dimension, value string) []byte {
	b = append(b, byte(dim))
	b = binary.AppendUvarint(b, uint64(len(value)))
	return append(b, value...)
}

// parseCellKey splits a cell key; ok is false for a key this package did
// not write.
func parseCellKey(k []byte) (dim Dimension, value []byte, n uint32, ok bool) {
	if len(k) < 6 {
		return 0, nil, 0, false
	}
	l, w := binary.Uvarint(k[1:])
	if w <= 0 || uint64(len(k)) != 1+uint64(w)+l+4 {
		return 0, nil, 0, false
	}
	value = k[1+w : 1+w+int(l)]
	return Dimension(k[0]), value, binary.BigEndian.Uint32(k[len(k)-4:]), true
}

// hourCell names one hourly cell while a flush aggregates; value points
// into a record of the batch, so building the key does not allocate.
type hourCell struct {
	dim   Dimension
	value string
	hour  uint32
}

// rollupAgg sums a batch into hourly cells; the daily cells are merged from
// the hourly ones, so each record is added six times, not twelve.
type rollupAgg struct {
	cells map[hourCell]*Cell
	free  []*Cell // cells from earlier flushes, reset, for reuse
	used  []*Cell
	// last is, by dimension, the cell the last record went to: records in
	// a row mostly share their key, route, owner and tier, and comparing
	// a cell's key costs less than hashing it (strings of the same record
	// source compare by pointer first).
	last [DimStatusClass + 1]struct {
		k hourCell
		c *Cell
	}
}

func newRollupAgg() *rollupAgg {
	return &rollupAgg{cells: make(map[hourCell]*Cell)}
}

func (a *rollupAgg) reset() {
	for _, c := range a.used {
		c.Reset()
	}
	a.free = append(a.free, a.used...)
	a.used = a.used[:0]
	clear(a.cells)
	clear(a.last[:])
}

func (a *rollupAgg) cell(k hourCell) *Cell {
	var last *struct {
		k hourCell
		c *Cell
	}
	if int(k.dim) < len(a.last) {
		last = &a.last[k.dim]
		if last.c != nil && last.k == k {
			return last.c
		}
	}
	c := a.findCell(k)
	if last != nil {
		last.k, last.c = k, c
	}
	return c
}

// findCell is cell without the memo of the last record's cells.
func (a *rollupAgg) findCell(k hourCell) *Cell {
	if c, ok := a.cells[k]; ok {
		return c
	}
	var c *Cell
	if n := len(a.free); n > 0 {
		c, a.free = a.free[n-1], a.free[:n-1]
	} else {
		c = new(Cell)
	}
	a.used = append(a.used, c)
	a.cells[k] = c
	return c
}

// add counts rec in the hourly cell of every dimension it carries.
func (a *rollupAgg) add(rec *Record) {
	o := observe(rec)
	hour := Hourly.number(rec.Time)
	a.cell(hourCell{DimTotal, "", hour}).add(&o)
	if o.class != 0 {
		a.cell(hourCell{DimStatusClass, statusClassNames[o.class], hour}).add(&o)
	}
	for _, dv := range [...]struct {
		dim   Dimension
		value string
	}{{DimRoute, rec.Route}, {DimKey, rec.KeyID}, {DimOwner, rec.OwnerID}, {DimTier, rec.Tier}} {
		if dv.value != "" {
			a.cell(hourCell{dv.dim, dv.value, hour}).add(&o)
		}
	}
}

// cellWrite is one cell delta to merge into the store.
type cellWrite struct {
	key  []byte
	cell *Cell
}

// rollupWriter merges deltas into stored cells; its buffers are reused
// from flush to flush.
type rollupWriter struct {
	hours, days []cellWrite
	dayCells    map[hourCell]*Cell // hour field holds the day number
	dayPool     rollupAgg
	scratch     Cell
	arena       []byte // keys and values handed to bbolt, valid until the transaction ends
	replaced    int    // damaged cells the last write replaced by its delta
	// backfillStep bounds the stored cells markDirty marks a flush
	// (cellsBackfillStep; tests make it small).
	backfillStep int
}

func newRollupWriter() *rollupWriter {
	return &rollupWriter{dayCells: make(map[hourCell]*Cell), dayPool: rollupAgg{cells: make(map[hourCell]*Cell)},
		backfillStep: cellsBackfillStep}
}

// prepare turns the aggregated hours into sorted hourly and daily writes,
// leaving out cells older than the retention cut-offs (0 = keep).
func (w *rollupWriter) prepare(agg *rollupAgg, minHour, minDay uint32) {
	w.hours, w.days = w.hours[:0], w.days[:0]
	w.dayPool.reset()
	w.arena = w.arena[:0]
	for k, c := range agg.cells {
		if k.hour >= minHour {
			w.hours = append(w.hours, cellWrite{key: w.key(k.dim, k.value, k.hour), cell: c})
		}
		day := k.hour / 24
		if day >= minDay {
			w.dayPool.cell(hourCell{k.dim, k.value, day}).Merge(c)
		}
	}
	for k, c := range w.dayPool.cells {
		w.days = append(w.days, cellWrite{key: w.key(k.dim, k.value, k.hour), cell: c})
	}
	byKey := func(a, b cellWrite) int { return bytes.Compare(a.key, b.key) }
	slices.SortFunc(w.hours, byKey)
	slices.SortFunc(w.days, byKey)
}

// key builds a cell key in the arena.
func (w *rollupWriter) key(dim Dimension, value string, n uint32) []byte {
	start := len(w.arena)
	w.arena = appendCellKey(w.arena, dim, value, n)
	return w.arena[start:len(w.arena):len(w.arena)]
}

// write merges the prepared deltas into the stored cells: one Get, decode,
// merge, encode and Put per touched cell, in key order.
func (w *rollupWriter) write(tx *store.Tx) error {
	w.replaced = 0
	for _, set := range [...]struct {
		iv     Interval
		writes []cellWrite
	}{{Hourly, w.hours}, {Daily, w.days}} {
		if len(set.writes) == 0 {
			continue
		}
		b, err := tx.MustBucket(set.iv.bucket())
		if err != nil {
			return err
		}
		for _, cw := range set.writes {
			merged := cw.cell
			if old := b.Get(cw.key); old != nil {
				if err := w.scratch.decode(old); err != nil {
					// A damaged cell must not block every later flush:
					// the delta replaces it and the Recorder logs it.
					w.scratch.Reset()
					w.replaced++
				}
				w.scratch.Merge(cw.cell)
				merged = &w.scratch
			}
			start := len(w.arena)
			w.arena = merged.appendBinary(w.arena)
			if err := b.Put(cw.key, w.arena[start:len(w.arena):len(w.arena)]); err != nil {
				return fmt.Errorf("metrics: write %s cell: %w", set.iv, err)
			}
		}
	}
	return nil
}
