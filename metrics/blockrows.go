package metrics

import (
	"fmt"
	"time"
)

// The loops a filtered read runs over every row of a block's time and key
// columns, and over the key list in its header. A page of a rare key
// opens a block for each of its records, so these loops are most of
// what it costs besides inflating (see docs/BENCHMARKS.md). They keep a
// byte index instead of reslicing a byteReader: a slice written back
// through a pointer costs a GC write barrier per row while a collection
// is marking, which the CPU profile of such a page showed as a fifth of
// its time in the row loops.

// uvarintAt reads the unsigned varint at b[i:] as binary.Uvarint does and
// returns it and the index after it; next is -1 when b[i:] holds no whole
// varint or one past 64 bits (then the caller must stop). It is too big
// for the compiler to inline, so the loops below test for a one-byte
// number (most of a block's) themselves and call it for the others.
func uvarintAt(b []byte, i int) (v uint64, next int) {
	for shift := uint(0); shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, -1
		}
		c := b[i]
		i++
		if c < 0x80 {
			if shift == 63 && c > 1 {
				return 0, -1
			}
			return v | uint64(c)<<shift, i
		}
		v |= uint64(c&0x7f) << shift
	}
	return 0, -1
}

// nextAscending turns the delta d read at position p of an ascending id
// list (see idList) into the id, given the id before it; a delta of 0 or
// one that overflows is errNotAscending.
func nextAscending(p int, prev, d uint64) (uint64, error) {
	if p == 0 {
		return d, nil
	}
	if d == 0 || prev+d < prev {
		return 0, errNotAscending
	}
	return prev + d, nil
}

// ascendingPosition returns the position of id in an ascending id list
// (see idList), or -1, reading the list only up to where id would be; a
// damaged list read that far is an error, as idList reports it. A key
// filter searches the list of every block's header, and a key first seen
// late (a new customer's) has an id near the end of each list: a rare
// key's page on the 90-day analytics fixture searches about 1,200 lists
// of 1,000 keys.
func ascendingPosition(list []byte, id uint64) (int, error) {
	prev := uint64(0)
	for p, i := 0, 0; i < len(list); p++ {
		d, next := uint64(list[i]), i+1
		if d >= 0x80 {
			if d, next = uvarintAt(list, i); next < 0 {
				return -1, errShortVarint
			}
		}
		v, err := nextAscending(p, prev, d)
		switch {
		case err != nil:
			return -1, err
		case v == id:
			return p, nil
		case v > id:
			return -1, nil
		}
		prev, i = v, next
	}
	return -1, nil
}

// appendAscendingIDs appends the ids of an ascending id list to dst.
func appendAscendingIDs(dst []uint64, list []byte) ([]uint64, error) {
	prev := uint64(0)
	for p, i := 0, 0; i < len(list); p++ {
		d, next := uvarintAt(list, i)
		if next < 0 {
			return dst, errShortVarint
		}
		v, err := nextAscending(p, prev, d)
		if err != nil {
			return dst, err
		}
		dst = append(dst, v)
		prev, i = v, next
	}
	return dst, nil
}

// decodeTimes reads the time column: deltas from the block's min time,
// none past its max time. Every row is read and checked, selected or not.
func decodeTimes(h blockHeader, col blockColumn, slot []int32, recs []Record) error {
	rows, i := col.rows, 0
	t := h.minTime
	for row, o := range slot {
		var delta uint64
		next := i + 1
		if i < len(rows) && rows[i] < 0x80 {
			delta = uint64(rows[i])
		} else if delta, next = uvarintAt(rows, i); next < 0 {
			return corruptColumn("time", fmt.Errorf("record %d: %v", row, errShortVarint))
		}
		if delta > uint64(h.maxTime-t) {
			return corruptColumn("time", fmt.Errorf("record %d after the block's max time", row))
		}
		i = next
		t += int64(delta)
		if o >= 0 {
			recs[o].Time = time.UnixMicro(t).UTC()
		}
	}
	if i != len(rows) {
		return corruptColumn("time", fmt.Errorf("%d bytes left over", len(rows)-i))
	}
	if len(col.table) != 0 {
		return corruptColumn("time", fmt.Errorf("unexpected table"))
	}
	return nil
}

// selectTimes clears sel[i] for the rows whose time is outside
// [fromMicro, toMicro).
func selectTimes(h blockHeader, rows []byte, fromMicro, toMicro int64, sel []bool) error {
	t, i := h.minTime, 0
	for row := range sel {
		delta, next := uvarintAt(rows, i)
		if next < 0 {
			return fmt.Errorf("record %d: %v", row, errShortVarint)
		}
		i = next
		t += int64(delta)
		if t < fromMicro || t >= toMicro {
			sel[row] = false
		}
	}
	return nil
}

// selectRows clears sel[i] for the rows whose plain position column (key,
// route, method: not the predicted owner and tier) is not p.
func selectRows(col blockColumn, p int, sel []bool) error {
	rows, i := col.rows, 0
	for row := range sel {
		v, next := uvarintAt(rows, i)
		if next < 0 {
			return fmt.Errorf("record %d: %v", row, errShortVarint)
		}
		if v != uint64(p) {
			sel[row] = false
		}
		i = next
	}
	if i != len(rows) {
		return fmt.Errorf("%d bytes left over", len(rows)-i)
	}
	return nil
}

// mapRows reads each record's key rank from the key rows of a version-4
// block, checks it against the key list, and counts the records of each
// segment (segStart); segmentRows groups them once something needs it.
func (p *v4Parts) mapRows(keyRows []byte, n int) error {
	if cap(p.rowRank) < n {
		p.rowRank = make([]uint32, n)
	}
	p.rowRank = p.rowRank[:n]
	p.segStart = append(p.segStart[:0], make([]int, len(p.segs)+1)...)
	counts := p.segStart[1:]
	keys := uint64(p.keys)
	i := 0
	for row := range p.rowRank {
		// A block's key ranks are under 128 or take two bytes.
		var rank uint64
		next := i + 1
		switch {
		case i < len(keyRows) && keyRows[i] < 0x80:
			rank = uint64(keyRows[i])
		case i+1 < len(keyRows) && keyRows[i+1] < 0x80:
			rank, next = uint64(keyRows[i]&0x7f)|uint64(keyRows[i+1])<<7, i+2
		default:
			rank, next = uvarintAt(keyRows, i)
		}
		if next < 0 {
			return corruptColumn("key", fmt.Errorf("record %d: %v", row, errShortVarint))
		}
		if rank >= keys {
			return corruptColumn("key", fmt.Errorf("record %d: position %d of %d", row, rank, keys))
		}
		i = next
		p.rowRank[row] = uint32(rank)
		counts[p.segOfRank[rank]]++
	}
	if i != len(keyRows) {
		return corruptColumn("key", fmt.Errorf("%d bytes left over", len(keyRows)-i))
	}
	for k := 1; k < len(p.segStart); k++ {
		p.segStart[k] += p.segStart[k-1]
	}
	p.mapped, p.grouped = true, false
	return nil
}

// segmentRows returns the records of segment k of a mapped block, in
// block order. The first call groups the records of every segment: a
// read filtered by key alone needs that only for the blocks whose rows
// it decodes, and does it there instead of in the job running ahead.
func (p *v4Parts) segmentRows(k int) []int32 {
	if !p.grouped {
		p.groupRows()
	}
	return p.order[p.segStart[k]:p.segStart[k+1]]
}

// groupRows sorts the records by segment into order (a counting sort,
// so block order within one).
func (p *v4Parts) groupRows() {
	n := len(p.rowRank)
	if cap(p.order) < n {
		p.order = make([]int32, n)
	}
	p.order = p.order[:n]
	p.nextInSeg = append(p.nextInSeg[:0], p.segStart[:len(p.segs)]...)
	for row, rank := range p.rowRank {
		s := p.segOfRank[rank]
		p.order[p.nextInSeg[s]] = int32(row)
		p.nextInSeg[s]++
	}
	p.grouped = true
}
