package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// A version-4 block has the header of version 3 (flags byte 0) and a body
// of separately compressed sections, so that a read filtered by key
// inflates a small part of each block instead of all of it:
//
//	uvarint segment count S (1 … maxSegments), then S−1 uvarints: the
//	  key rank (position in the header's sorted key list) each segment
//	  after the first starts at, as the difference (≥ 1) from the one
//	  before (the first segment starts at rank 0)
//	select section: table and rows (uvarint length and bytes each, as
//	  in version 3) of the time and key columns (the key's table empty:
//	  it is the header's)
//	shared section: the tables of the path and user agent columns
//	S segment sections: table and rows of every other column for the
//	  records whose key rank falls in the segment's range, in block
//	  order (the path and user agent tables empty: they are shared)
//
// Each section is a kind byte (0 stored, 1 DEFLATE-compressed), a uvarint
// length and the bytes. The column encodings are those of block.go, but
// a segment is readable without the others: its tables (but the shared
// ones) hold only what its records use, a request id's number is the
// delta from the one before of its shape in the segment, and the owner
// and tier predictions (the value last seen with the key) stay inside it
// because all of a key's records are in one segment. Segments split the
// records into ranges of keys of about segmentRecords records each, so a
// page of one key inflates the select section, the shared one and one
// segment of each block holding the key. Paths and user agents are
// shared because the same ones come from many keys: on a block of
// realistic traffic, with path tables per segment version 4 cost 15%
// more bytes than version 3, with them shared 6.5% (see
// docs/BENCHMARKS.md).

const (
	// segmentRecords is about how many records a segment holds. Measured
	// on a block of realistic traffic (BenchmarkKeyRowsOfBlock): 1,024
	// cost 6.5% more bytes than version 3 and a key's rows took 0.32 of
	// version 3's CPU time, 512 cost 6.3% and took 0.29, 256 cost 8.3%
	// and took 0.25. Smaller segments repeat more table entries.
	segmentRecords = 512
	// maxSegments bounds the segments of a block (and what a decoder
	// accepts): a full block has this many.
	maxSegments = maxBlockRecords / segmentRecords

	sectionStored   = 0
	sectionDeflated = 1
)

// v4InSelect reports whether version 4 keeps column c in the select
// section; the others are in the segments.
func v4InSelect(c int) bool {
	return c == colTime || c == colKey
}

// v4SharedTable reports whether version 4 keeps segment column c's
// table in the shared section.
func v4SharedTable(c int) bool {
	return c == colPath || c == colUserAgent
}

// segmentNumbers reports whether segment column c is a number column,
// whose rows are copied into the segments as the encoder wrote them.
func segmentNumbers(c int) bool {
	switch c {
	case colStatus, colLatency, colUpstream, colRequestBytes, colResponseBytes, colFlags:
		return true
	}
	return false
}

// segmentColumns are the columns whose rows are in the segments, in the
// order a segment holds them.
var segmentColumns = func() []int {
	var cols []int
	for c := range numColumns {
		if !v4InSelect(c) {
			cols = append(cols, c)
		}
	}
	return cols
}()

// v4Scratch is what the encoder keeps per row to lay out version-4
// segments once the key ranks are known.
type v4Scratch struct {
	pos       [numColumns][]uint32 // for a segment string column or the client ip, each row's table position
	rowEnds   [numColumns][]uint32 // for a segment number column, len(rows) after each row
	idPos     []uint32             // each row's request id shape position
	idNumeric []bool
	idNum     []uint64
	entries   [numColumns][][]byte // the block's table entries of a block-local column
	remap     []int32              // block table position -> segment table position, -1 none
	lastByKey []int64              // owner or tier position last seen with a key rank in the segment
	rankRows  []uint32             // records per key rank
	segOfRank []uint8
	order     []uint32 // row numbers grouped by segment, in block order within one
	segStart  []int    // where each segment's rows begin in order, plus the end
	idPrev    []uint64
	section   []byte // one section before compression
	table     []byte // one segment column's table
	column    []byte // one segment column's rows
}

func (v *v4Scratch) reset() {
	for _, c := range segmentColumns {
		v.pos[c], v.rowEnds[c] = v.pos[c][:0], v.rowEnds[c][:0]
	}
	v.idPos, v.idNumeric, v.idNum = v.idPos[:0], v.idNumeric[:0], v.idNum[:0]
}

func (v *v4Scratch) addRequestID(p uint32, numeric bool, num uint64) {
	v.idPos = append(v.idPos, p)
	v.idNumeric = append(v.idNumeric, numeric)
	v.idNum = append(v.idNum, num)
}

// endRow remembers where the row just encoded ends in each number column.
func (v *v4Scratch) endRow(rows *[numColumns][]byte) {
	for _, c := range segmentColumns {
		if segmentNumbers(c) {
			v.rowEnds[c] = append(v.rowEnds[c], uint32(len(rows[c])))
		}
	}
}

// appendBodyV4 appends the version-4 body of the n records just encoded
// (tables, positions and number rows filled, keys sorted) to dst.
func (e *blockEncoder) appendBodyV4(dst []byte, n int) []byte {
	v := &e.v4
	bounds := e.planSegments(n)
	dst = binary.AppendUvarint(dst, uint64(len(bounds)+1))
	prev := uint32(0)
	for _, b := range bounds {
		dst = binary.AppendUvarint(dst, uint64(b-prev))
		prev = b
	}
	v.section = v.section[:0]
	for c := range numColumns {
		if v4InSelect(c) {
			v.section = appendBytes(v.section, e.tables[c])
			v.section = appendBytes(v.section, e.rows[c])
		}
	}
	dst = e.appendSection(dst, v.section)

	v.section = v.section[:0]
	for _, c := range segmentColumns {
		if v4SharedTable(c) {
			v.section = appendBytes(v.section, e.tables[c])
		}
	}
	dst = e.appendSection(dst, v.section)

	for _, c := range segmentColumns {
		if !segmentNumbers(c) && !v4SharedTable(c) && !inDict(blockVersion, c) {
			v.entries[c] = splitEntries(v.entries[c][:0], e.tables[c], c == colRequestID)
		}
	}
	for k := 0; k+1 < len(v.segStart); k++ {
		rows := v.order[v.segStart[k]:v.segStart[k+1]]
		v.section = v.section[:0]
		for _, c := range segmentColumns {
			e.segmentColumn(c, rows)
			v.section = appendBytes(v.section, v.table)
			v.section = appendBytes(v.section, v.column)
		}
		dst = e.appendSection(dst, v.section)
	}
	return dst
}

// segmentColumn writes column c of the segment holding rows into
// v.table and v.column.
func (e *blockEncoder) segmentColumn(c int, rows []uint32) {
	v := &e.v4
	v.table, v.column = v.table[:0], v.column[:0]
	switch {
	case segmentNumbers(c):
		ends := v.rowEnds[c]
		for _, i := range rows {
			start := uint32(0)
			if i > 0 {
				start = ends[i-1]
			}
			v.column = append(v.column, e.rows[c][start:ends[i]]...)
		}
		return
	case v4SharedTable(c):
		for _, i := range rows {
			v.column = binary.AppendUvarint(v.column, uint64(v.pos[c][i]))
		}
		return
	}
	pos, entries := v.pos[c], len(v.entries[c])
	if c == colRequestID {
		pos = v.idPos
	}
	if inDict(blockVersion, c) {
		entries = len(e.dicts[c].ids)
	}
	v.remap = append(v.remap[:0], make([]int32, entries)...)
	for i := range v.remap {
		v.remap[i] = -1
	}
	used := int32(0)
	predicted := c == colOwner || c == colTier
	if predicted {
		v.lastByKey = append(v.lastByKey[:0], make([]int64, len(e.keyOrder))...)
		for i := range v.lastByKey {
			v.lastByKey[i] = -1
		}
	}
	v.idPrev = v.idPrev[:0]
	for _, i := range rows {
		g := pos[i]
		p := v.remap[g]
		if p < 0 {
			p, v.remap[g] = used, used
			used++
			if inDict(blockVersion, c) {
				v.table = binary.AppendUvarint(v.table, e.dicts[c].ids[g])
			} else {
				v.table = append(v.table, v.entries[c][g]...)
			}
			v.idPrev = append(v.idPrev, 0)
		}
		switch {
		case c == colRequestID:
			v.column = appendRequestIDRow(v.column, v.idPrev, uint32(p), v.idNumeric[i], v.idNum[i])
		case predicted:
			v.column = appendPredicted(v.column, &v.lastByKey[e.keyRank[e.keyRows[i]]], uint32(p))
		default:
			v.column = binary.AppendUvarint(v.column, uint64(p))
		}
	}
}

// splitEntries appends to dst the entries of a block-local table (each a
// uvarint length and bytes, and for request id shapes a mode byte), each
// with its length.
func splitEntries(dst [][]byte, table []byte, shapes bool) [][]byte {
	for rest := table; len(rest) > 0; {
		l, n := binary.Uvarint(rest)
		size := n + int(l)
		if shapes {
			size++
		}
		dst = append(dst, rest[:size])
		rest = rest[size:]
	}
	return dst
}

// planSegments splits the block's key ranks into ranges of about
// segmentRecords records, fills v.order and v.segStart, and returns the
// rank each segment after the first starts at.
func (e *blockEncoder) planSegments(n int) []uint32 {
	v := &e.v4
	keys := len(e.keyOrder)
	segments := min(maxSegments, (n+segmentRecords-1)/segmentRecords, keys)
	v.rankRows = append(v.rankRows[:0], make([]uint32, keys)...)
	for _, p := range e.keyRows {
		v.rankRows[e.keyRank[p]]++
	}
	var bounds []uint32
	v.segOfRank = append(v.segOfRank[:0], make([]uint8, keys)...)
	seen := 0
	for rank, rows := range v.rankRows {
		if rank > 0 && len(bounds)+1 < segments && seen >= (len(bounds)+1)*n/segments {
			bounds = append(bounds, uint32(rank))
		}
		v.segOfRank[rank] = uint8(len(bounds))
		seen += int(rows)
	}
	// A counting sort of the rows by segment keeps block order inside one.
	v.segStart = append(v.segStart[:0], make([]int, len(bounds)+2)...)
	for _, p := range e.keyRows {
		v.segStart[v.segOfRank[e.keyRank[p]]+1]++
	}
	for k := 1; k < len(v.segStart); k++ {
		v.segStart[k] += v.segStart[k-1]
	}
	v.order = append(v.order[:0], make([]uint32, n)...)
	next := append([]int(nil), v.segStart[:len(v.segStart)-1]...)
	for i, p := range e.keyRows {
		s := v.segOfRank[e.keyRank[p]]
		v.order[next[s]] = uint32(i)
		next[s]++
	}
	return bounds
}

// appendSection appends raw as a section: compressed when that saves at
// least an eighth. The select section of times and key positions saves
// less than a tenth, and stored it costs a read nothing to inflate.
func (e *blockEncoder) appendSection(dst, raw []byte) []byte {
	if len(raw) > 64 {
		e.zbuf.Reset()
		e.resetCompressor()
		_, _ = e.zw.Write(raw) // writes to a bytes.Buffer do not fail
		_ = e.zw.Close()
		if e.zbuf.Len() < len(raw)-len(raw)/8 {
			dst = append(dst, sectionDeflated)
			return appendBytes(dst, e.zbuf.Bytes())
		}
	}
	dst = append(dst, sectionStored)
	return appendBytes(dst, raw)
}

// appendBytes appends b with its uvarint length before it.
func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// section is one section of a version-4 body as stored.
type section struct {
	deflated bool
	data     []byte
}

// blockSegment is one segment of a version-4 block being read.
type blockSegment struct {
	raw    section
	loaded bool
	cols   [numColumns]blockColumn // of the segment columns, once loaded
}

// v4Parts is what a reader knows of a version-4 block beyond the select
// section's columns: the segments, inflated as needed, and once mapped
// which records each holds.
type v4Parts struct {
	keys      int      // entries of the header's key list
	keyIDs    []uint64 // the header's key list, read by openV4
	segOfRank []uint8  // the segment of each key rank
	mapped    bool     // rowRank and segStart are set
	grouped   bool     // order is set
	rowRank   []uint32
	order     []int32 // records grouped by segment, block order within one
	segStart  []int   // where each segment's records begin in order, plus the end
	nextInSeg []int   // scratch of mapRows
	segSlot   []int32 // scratch of decodeV4: one segment's slots
	segKey    []uint32
	last      []int64 // scratch of decodeV4: a predicted value by key rank
	segs      []blockSegment
	shared    section
	sharedOK  bool               // the shared section is loaded
	sharedCol [numColumns][]byte // the shared tables, once loaded
	bufs      [][]byte           // inflated segments, reused
	selectBuf []byte
	sharedBuf []byte
	inflated  int    // bytes inflated for this block so far
	needed    []bool // scratch: segments a selection needs
}

// openV4 reads the prelude and sections of a version-4 body and inflates
// the select section into view.cols; the segments wait for loadV4.
func (d *blockDecoder) openV4(view *blockView, body []byte) error {
	p := &view.v4
	h := &view.h
	p.inflated, p.mapped, p.sharedOK = 0, false, false
	var err error
	if p.keyIDs, err = appendAscendingIDs(p.keyIDs[:0], h.keys); err != nil {
		return fmt.Errorf("%w: key list: %v", ErrCorruptBlock, err)
	}
	p.keys = len(p.keyIDs)
	r := byteReader{b: body}
	segments := r.uvarint()
	if r.err != nil || segments == 0 || segments > maxSegments || segments > uint64(max(p.keys, 1)) {
		return fmt.Errorf("%w: %d segments", ErrCorruptBlock, segments)
	}
	p.segOfRank = append(p.segOfRank[:0], make([]uint8, p.keys)...)
	start := uint64(0)
	for k := uint64(1); k < segments; k++ {
		delta := r.uvarint()
		if delta == 0 || start+delta >= uint64(p.keys) {
			return fmt.Errorf("%w: segment %d starts past the keys", ErrCorruptBlock, k)
		}
		start += delta
		for rank := start; rank < uint64(p.keys); rank++ {
			p.segOfRank[rank] = uint8(k)
		}
	}
	selectSec := readSection(&r)
	shared := readSection(&r)
	p.segs = p.segs[:0]
	for range segments {
		p.segs = append(p.segs, blockSegment{raw: readSection(&r)})
	}
	if r.err != nil {
		return fmt.Errorf("%w: sections: %v", ErrCorruptBlock, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last section", ErrCorruptBlock, len(r.b))
	}
	raw, err := d.sectionBytes(p, selectSec, &p.selectBuf)
	if err != nil {
		return err
	}
	p.shared = shared
	view.cols = [numColumns]blockColumn{}
	sr := byteReader{b: raw}
	for c := range numColumns {
		if v4InSelect(c) {
			view.cols[c].table = sr.bytes(sr.uvarint())
			view.cols[c].rows = sr.bytes(sr.uvarint())
		}
	}
	if err := endOfSection(&sr, "select"); err != nil {
		return err
	}
	if len(view.cols[colKey].table) != 0 {
		return fmt.Errorf("%w: key table in the body", ErrCorruptBlock)
	}
	view.cols[colKey].table, view.cols[colKey].ascending = h.keys, true
	return nil
}

// readSection reads a section's kind, length and bytes.
func readSection(r *byteReader) section {
	kind := r.byte()
	data := r.bytes(r.uvarint())
	if r.err == nil && kind != sectionStored && kind != sectionDeflated {
		r.err = fmt.Errorf("section kind %d", kind)
	}
	return section{deflated: kind == sectionDeflated, data: data}
}

// endOfSection checks that a section was read exactly.
func endOfSection(r *byteReader, name string) error {
	if r.err != nil {
		return fmt.Errorf("%w: %s section: %v", ErrCorruptBlock, name, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the %s section", ErrCorruptBlock, len(r.b), name)
	}
	return nil
}

// sectionBytes returns a section's bytes: its data when stored, else the
// data inflated into *buf. All sections of a block together may not
// inflate to more than maxBlockBody.
func (d *blockDecoder) sectionBytes(p *v4Parts, s section, buf *[]byte) ([]byte, error) {
	if !s.deflated {
		return s.data, nil
	}
	out, err := d.inflate(s.data, (*buf)[:0], maxBlockBody-p.inflated)
	*buf = out
	p.inflated += len(out)
	return out, err
}

// loadV4 inflates the segments holding the records sel selects (all of
// them when sel is nil), so decodeColumns can decode those records.
func (d *blockDecoder) loadV4(view *blockView, sel []bool) error {
	p := &view.v4
	if !p.mapped {
		if err := p.mapRows(view.cols[colKey].rows, view.h.count); err != nil {
			return err
		}
	}
	p.needed = append(p.needed[:0], make([]bool, len(p.segs))...)
	for i, rank := range p.rowRank {
		if sel == nil || sel[i] {
			p.needed[p.segOfRank[rank]] = true
		}
	}
	if !slices.Contains(p.needed, true) {
		return nil
	}
	if err := d.loadShared(p); err != nil {
		return err
	}
	for len(p.bufs) < len(p.segs) {
		p.bufs = append(p.bufs, nil)
	}
	for k := range p.segs {
		seg := &p.segs[k]
		if !p.needed[k] || seg.loaded {
			continue
		}
		raw, err := d.sectionBytes(p, seg.raw, &p.bufs[k])
		if err != nil {
			return err
		}
		r := byteReader{b: raw}
		for _, c := range segmentColumns {
			seg.cols[c].table = r.bytes(r.uvarint())
			seg.cols[c].rows = r.bytes(r.uvarint())
			if v4SharedTable(c) && r.err == nil {
				if len(seg.cols[c].table) != 0 {
					r.err = fmt.Errorf("%s table not shared", columnName(c))
				}
				seg.cols[c].table = p.sharedCol[c]
			}
		}
		if err := endOfSection(&r, fmt.Sprintf("segment %d", k)); err != nil {
			return err
		}
		seg.loaded = true
	}
	return nil
}

// loadShared inflates the shared section, once per block.
func (d *blockDecoder) loadShared(p *v4Parts) error {
	if p.sharedOK {
		return nil
	}
	raw, err := d.sectionBytes(p, p.shared, &p.sharedBuf)
	if err != nil {
		return err
	}
	r := byteReader{b: raw}
	for _, c := range segmentColumns {
		if v4SharedTable(c) {
			p.sharedCol[c] = r.bytes(r.uvarint())
		}
	}
	if err := endOfSection(&r, "shared"); err != nil {
		return err
	}
	p.sharedOK = true
	return nil
}

// v4SegmentStrings are the string columns of a version-4 segment, in the
// order of stringColumns.
var v4SegmentStrings = [...]int{colMethod, colRoute, colPath, colOwner, colTier, colCountry, colUserAgent, colDecision}

// decodeKeys sets the key of the records slot selects from the key ranks
// mapRows read (and checked), resolving only the keys those records
// have: a page of one key resolves one, not the block's thousand.
func (p *v4Parts) decodeKeys(resolve func(uint64) (string, error), slot []int32, recs []Record) error {
	names := map[uint32]string{}
	for i, o := range slot {
		if o < 0 {
			continue
		}
		rank := p.rowRank[i]
		name, ok := names[rank]
		if !ok {
			var err error
			if name, err = resolve(p.keyIDs[rank]); err != nil {
				return corruptColumn("key", err)
			}
			names[rank] = name
		}
		recs[o].KeyID = name
	}
	return nil
}

// decodeV4 reads the columns of a version-4 block but time (which
// decodeColumns has read) into the records slot selects: the select
// section's for every row, the segments' for the loaded segments. A
// selected row in a segment not loaded is errSegmentNotLoaded: loadV4
// was not called for the selection.
func decodeV4(view *blockView, resolve func(uint64) (string, error), slot []int32, recs []Record) error {
	h, p := view.h, &view.v4
	if !p.mapped {
		if slices.ContainsFunc(slot, func(o int32) bool { return o >= 0 }) {
			return errSegmentNotLoaded
		}
		return nil
	}
	// Only the selected records' segments were loaded, and only their
	// rows are looked at below.
	for i, o := range slot {
		if o >= 0 && !p.segs[p.segOfRank[p.rowRank[i]]].loaded {
			return errSegmentNotLoaded
		}
	}
	if err := p.decodeKeys(resolve, slot, recs); err != nil {
		return err
	}
	// The shared tables are split once per block, not once per segment.
	var shared [numColumns]*stringTable
	for _, c := range v4SegmentStrings {
		if v4SharedTable(c) && slices.ContainsFunc(p.segs, func(s blockSegment) bool { return s.loaded }) {
			shared[c] = new(stringTable)
			if err := shared[c].load(blockColumn{table: p.sharedCol[c]}, h.count, false, resolve); err != nil {
				return corruptColumn(columnName(c), err)
			}
		}
	}
	if cap(p.last) < p.keys {
		p.last = make([]int64, p.keys)
	}
	p.last = p.last[:p.keys]
	for k := range p.segs {
		seg := &p.segs[k]
		if !seg.loaded {
			continue
		}
		p.segSlot, p.segKey = p.segSlot[:0], p.segKey[:0]
		for _, i := range p.segmentRows(k) {
			p.segSlot = append(p.segSlot, slot[i])
			p.segKey = append(p.segKey, p.rowRank[i])
		}
		if err := decodeSegment(h, &seg.cols, &shared, resolve, p.segSlot, p.segKey, p.last, recs); err != nil {
			return fmt.Errorf("%w (segment %d)", err, k)
		}
	}
	return nil
}

// decodeSegment reads the columns of one segment into the records
// segSlot selects; segKey is each row's key rank, last scratch of the
// key list's length, and shared the shared tables, loaded.
func decodeSegment(h blockHeader, cols *[numColumns]blockColumn, shared *[numColumns]*stringTable, resolve func(uint64) (string, error), segSlot []int32, segKey []uint32, last []int64, recs []Record) error {
	n := len(segSlot)
	if err := decodeRequestIDs(cols[colRequestID], n, segSlot, recs); err != nil {
		return corruptColumn("request id", err)
	}
	var own stringTable
	for _, c := range v4SegmentStrings {
		table := shared[c]
		if table == nil {
			table = &own
			// a segment's own table has no more entries than records
			if err := table.load(cols[c], n, inDict(h.version, c), resolve); err != nil {
				return corruptColumn(columnName(c), err)
			}
		}
		var predicted []int64
		if c == colOwner || c == colTier {
			predicted = last
			for j := range predicted {
				predicted[j] = -1
			}
		}
		if err := decodeStringRows(c, cols[c].rows, table, segKey, predicted, segSlot, recs); err != nil {
			return corruptColumn(columnName(c), err)
		}
	}
	ips, err := loadClientIPs(cols[colClientIP].table, n)
	if err != nil {
		return err
	}
	if err := decodeClientIPRows(ips, cols[colClientIP].rows, segSlot, recs); err != nil {
		return err
	}
	if err := decodeNumbers(cols, segSlot, recs); err != nil {
		return err
	}
	return decodeFlags(cols[colFlags], segSlot, recs)
}

// errSegmentNotLoaded is a reader's bug, not damage: a selected row's
// segment was not inflated.
var errSegmentNotLoaded = errors.New("metrics: block segment of a selected record not loaded")

// selectSegmentRows clears in sel the rows of a version-4 block that the
// route, method or status filters leave out, reading those columns in
// the loaded segments (loadV4 loaded every segment with a selected row).
// It reports whether any row is still selected.
func (f *recordFilter) selectSegmentRows(view *blockView, sel []bool) (bool, error) {
	p := &view.v4
	if !p.mapped {
		return false, nil // nothing was selected to load
	}
	for k := range p.segs {
		seg := &p.segs[k]
		if !seg.loaded {
			continue
		}
		rows := p.segmentRows(k)
		for _, df := range &f.strs {
			if df.s == "" || v4InSelect(df.col) {
				continue
			}
			pos, err := df.position(view.h.version, seg.cols[df.col])
			if err != nil {
				return false, err
			}
			r := byteReader{b: seg.cols[df.col].rows}
			for _, i := range rows {
				if v := r.uvarint(); pos < 0 || v != uint64(pos) {
					sel[i] = false
				}
			}
			if err := finish(&r); err != nil {
				return false, corruptColumn(columnName(df.col), err)
			}
		}
		if f.filtersStatus() {
			r := byteReader{b: seg.cols[colStatus].rows}
			for _, i := range rows {
				if !f.statusWanted(r.uvarint()) {
					sel[i] = false
				}
			}
			if err := finish(&r); err != nil {
				return false, corruptColumn("status", err)
			}
		}
	}
	return slices.Contains(sel, true), nil
}
