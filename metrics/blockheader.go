package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The uncompressed front of a block (the format is in block.go): what a
// reader checks before it pays for inflating the body.

// blockHeader is the uncompressed front of a block.
type blockHeader struct {
	count            int
	version, flags   byte
	minTime, maxTime int64 // µs since the epoch
	// keys is the key column's table of a version-3 block: the dictionary
	// ids of the keys it holds, ascending, delta-coded (see idList). It is
	// nil for older versions, which keep that table in the body.
	keys []byte
}

// appendBlockHeader appends the header of a block of version 3 or later.
func appendBlockHeader(dst []byte, version, flags byte, count int, minT, maxT int64, keys []byte) []byte {
	dst = append(dst, version, flags)
	dst = binary.AppendUvarint(dst, uint64(count))
	dst = binary.AppendVarint(dst, minT)
	dst = binary.AppendUvarint(dst, uint64(maxT-minT))
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	return append(dst, keys...)
}

// parseBlockHeader reads the header and returns the body after it.
func parseBlockHeader(b []byte) (blockHeader, []byte, error) {
	var h blockHeader
	if len(b) < 2 || b[0] < blockVersion1 || b[0] > blockVersion {
		return h, nil, fmt.Errorf("%w: unknown version", ErrCorruptBlock)
	}
	h.version, h.flags = b[0], b[1]
	if h.flags&^blockFlagFlate != 0 || (h.version >= blockVersion4 && h.flags != 0) {
		return h, nil, fmt.Errorf("%w: unknown flags %#x", ErrCorruptBlock, h.flags)
	}
	r := byteReader{b: b[2:]}
	count := r.uvarint()
	h.minTime = r.varint()
	span := r.uvarint()
	if h.version >= blockVersion3 {
		h.keys = r.bytes(r.uvarint())
	}
	if r.err != nil {
		return h, nil, fmt.Errorf("%w: header: %v", ErrCorruptBlock, r.err)
	}
	if count == 0 || count > maxDecodeRecords {
		return h, nil, fmt.Errorf("%w: %d records", ErrCorruptBlock, count)
	}
	if span > math.MaxInt64 || h.minTime > math.MaxInt64-int64(span) {
		return h, nil, fmt.Errorf("%w: time span out of range", ErrCorruptBlock)
	}
	h.count = int(count)
	h.maxTime = h.minTime + int64(span)
	return h, r.b, nil
}

// mayHoldKey reports whether the block can hold a record of the key with
// dictionary id id, reading only the header: false means it certainly
// does not. Blocks older than version 3 may hold any key.
func (h *blockHeader) mayHoldKey(id uint64) (bool, error) {
	if h.version < blockVersion3 {
		return true, nil
	}
	p, err := ascendingPosition(h.keys, id)
	if err != nil {
		return false, fmt.Errorf("%w: key list: %v", ErrCorruptBlock, err)
	}
	return p >= 0, nil
}

var errNotAscending = errors.New("ids not ascending")

// idList reads the dictionary ids of a column's table in order: plain
// uvarints, or for an ascending table the first id and then the uvarint
// difference (≥ 1) from the id before, which keeps a block's key list
// about a byte an entry.
type idList struct {
	r         byteReader
	ascending bool
	prev      uint64
	n         int // ids read
}

func newIDList(col blockColumn) idList {
	return idList{r: byteReader{b: col.table}, ascending: col.ascending}
}

// next returns the next id; ok is false at the end of the table or on
// damage (then err says which).
func (l *idList) next() (id uint64, ok bool) {
	if len(l.r.b) == 0 || l.r.err != nil {
		return 0, false
	}
	id = l.r.uvarint()
	if l.r.err != nil {
		return 0, false
	}
	if l.ascending && l.n > 0 {
		if id == 0 || l.prev+id < l.prev {
			l.r.err = errNotAscending
			return 0, false
		}
		id += l.prev
	}
	l.prev = id
	l.n++
	return id, true
}

func (l *idList) err() error { return l.r.err }

// dictPosition returns the position of id in a dictionary column's table,
// or -1. An ascending table is only read up to where id would be.
func dictPosition(col blockColumn, id uint64) (int, error) {
	if col.ascending {
		return ascendingPosition(col.table, id)
	}
	l := newIDList(col)
	for p := 0; ; p++ {
		v, ok := l.next()
		if !ok {
			return -1, l.err()
		}
		if v == id {
			return p, nil
		}
		if col.ascending && v > id {
			return -1, nil
		}
	}
}
