package metrics

import (
	"bytes"
	"cmp"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/apiwarden/apiwarden/decision"
)

// A raw block packs up to maxBlockRecords records of one UTC day, sorted by
// time, column by column:
//
//	header (never compressed, so time-range and key-filtered reads skip
//	  a block unread): version byte (3; 1 and 2 are still read), flags
//	  byte (bit 0: body is DEFLATE-compressed), uvarint record count,
//	  varint min time (µs since the epoch), uvarint max time − min time
//	  (µs), and from version 3 the key column's table: uvarint length,
//	  then the dictionary ids of the block's keys in ascending order, the
//	  first as a uvarint and each other as the uvarint difference from
//	  the one before
//	body: one section per column in the order of the col* constants, each
//	  uvarint table length, table, uvarint rows length, rows; from version
//	  3 the key column's table section is empty (its table is the header's)
//
// Column encodings:
//   - time: uvarint delta in µs from the previous record (the first from
//     the min time).
//   - route, key, owner, tier, decision: interned in the dictionary
//     bucket; the table lists the global ids the block uses (uvarint each)
//     and a row is the uvarint position in it. Owner and tier follow the
//     key: a row is 0 when the value is the one last seen with the row's
//     key in this block, else position+1. The key's table is in the
//     header from version 3, sorted by id so that it costs about a byte a
//     key uncompressed (versions 1 and 2 list keys in order of first use).
//   - method, path, country, user agent: a block-local table of the
//     distinct strings (uvarint length, bytes); a row is the position.
//     Clients choose these (any token is a method to net/http, the
//     country header is only trustworthy behind a CDN), so they must not
//     grow the dictionary, which is never cleaned: a block-local string
//     dies with its block when retention drops the day. Version 1 blocks
//     interned method, country and user agent like the route.
//   - client IP: a block-local table of addresses (uvarint length,
//     netip.Addr binary form); a row is the position.
//   - request id: a table of shapes (uvarint length, prefix, mode byte:
//     0 literal, 1 prefix + decimal number, w ≥ 2 prefix + number
//     zero-padded to w digits); a row is the uvarint shape position and, for
//     a numeric shape, the zigzag varint delta from the previous number of
//     that shape. apiwarden's own ids (a fixed prefix and a counter) cost
//     about two bytes before compression; any other id round-trips exactly
//     as a literal.
//   - status, latency (µs), request bytes, response bytes: uvarint.
//   - upstream latency: zigzag varint of latency − upstream latency (µs),
//     small because the two move together.
//   - flags: one byte, error category | cache status << 4.
//
// The body is DEFLATE-compressed when that makes it smaller, which it does
// for any block of more than a few records. Version 4 keeps these column
// encodings but splits the body into separately compressed sections, so
// that a filtered read inflates only what it needs (see blockv4.go).

const (
	blockVersion   = 4 // what the encoder writes
	blockVersion1  = 1 // method, country and user agent in the dictionary
	blockVersion3  = 3 // the key column's table in the header
	blockVersion4  = 4 // sections: see blockv4.go
	blockFlagFlate = 1 << 0

	// maxBlockRecords caps a block so that a page of a paginated read
	// decodes a bounded amount; a bigger flush writes several blocks.
	maxBlockRecords = 8192
	// maxDecodeRecords and maxBlockBody bound what a decoder accepts, so a
	// damaged or hostile block cannot make it allocate without limit.
	maxDecodeRecords = 1 << 16
	maxBlockBody     = 16 << 20

	// blockCompression trades flush CPU for bytes on disk. Measured on
	// realistic traffic (BenchmarkFlushThroughput, BenchmarkBytesOnDisk):
	// level 6 saves about 3 bytes a record over BestSpeed but halves
	// flush throughput (≈195k vs ≈380k records/s), level 4 sits between.
	blockCompression = flate.BestSpeed
)

// Column order inside a block body.
const (
	colTime = iota
	colRequestID
	colMethod
	colRoute
	colPath
	colStatus
	colLatency
	colUpstream
	colRequestBytes
	colResponseBytes
	colKey
	colOwner
	colTier
	colClientIP
	colCountry
	colUserAgent
	colFlags
	colDecision
	numColumns
)

// stringColumns are the columns that hold strings, in the order they are
// encoded and decoded: the key before the owner and tier it predicts.
var stringColumns = [...]int{colMethod, colRoute, colPath, colKey, colOwner, colTier, colCountry, colUserAgent, colDecision}

// inDict reports whether a string column of a block of the given version
// holds dictionary ids; the others hold block-local strings.
func inDict(version byte, c int) bool {
	switch c {
	case colRoute, colKey, colOwner, colTier, colDecision:
		return true
	case colMethod, colCountry, colUserAgent:
		return version == blockVersion1
	}
	return false
}

// Request id shape modes.
const (
	idLiteral  = 0
	idNatural  = 1
	maxIDWidth = 18 // digits a uint64 holds with room for deltas
)

type idShape struct {
	prefix string
	mode   uint8
}

// localDict maps the strings one dictionary column uses to positions in
// the block's table; only a string's first row in a block asks the
// dictionary for its id.
type localDict struct {
	index map[string]uint32
	ids   []uint64 // by position
}

func (d *localDict) reset() {
	if d.index == nil {
		d.index = make(map[string]uint32)
	}
	clear(d.index)
	d.ids = d.ids[:0]
}

// position returns the string's position, adding its global id to table
// if it is new to the block.
func (d *localDict) position(s string, table *[]byte, intern func(string) (uint64, error)) (uint32, error) {
	if p, ok := d.index[s]; ok {
		return p, nil
	}
	id, err := intern(s)
	if err != nil {
		return 0, err
	}
	p := uint32(len(d.index))
	d.index[s] = p
	d.ids = append(d.ids, id)
	*table = binary.AppendUvarint(*table, id)
	return p, nil
}

// localStrings maps the strings of a block-local column to their positions
// in the block's table.
type localStrings struct {
	index map[string]uint32
}

func (l *localStrings) reset() {
	if l.index == nil {
		l.index = make(map[string]uint32)
	}
	clear(l.index)
}

// position returns the string's position, appending it to table if it is
// new to the block.
func (l *localStrings) position(s string, table *[]byte) uint32 {
	if p, ok := l.index[s]; ok {
		return p
	}
	p := uint32(len(l.index))
	l.index[s] = p
	*table = binary.AppendUvarint(*table, uint64(len(s)))
	*table = append(*table, s...)
	return p
}

// blockEncoder turns records into blocks. Its maps and buffers are reused
// from block to block; it is not safe for concurrent use.
type blockEncoder struct {
	// version is the format written: blockVersion, or blockVersion3 for
	// tests that need blocks as earlier binaries wrote them.
	version byte

	tables, rows [numColumns][]byte

	dicts      [numColumns]localDict    // dictionary columns
	locals     [numColumns]localStrings // block-local string columns
	ips        map[netip.Addr]uint32
	shapes     map[idShape]uint32
	shapePrev  []uint64
	ownerByKey []int64 // owner position last seen with each key position, -1 none
	tierByKey  []int64
	keyRows    []uint32  // each record's key position in order of first use
	keyOrder   []idAtPos // the block's keys sorted by id
	keyRank    []uint32  // position in order of first use -> sorted position
	keyList    []byte    // the header's key table

	body  []byte
	zbuf  bytes.Buffer
	zw    *flate.Writer
	numbs []byte // scratch for one address

	v4 v4Scratch // version 4 only
}

func newBlockEncoder() *blockEncoder {
	return &blockEncoder{
		version: blockVersion,
		ips:     make(map[netip.Addr]uint32),
		shapes:  make(map[idShape]uint32),
	}
}

func (e *blockEncoder) reset() {
	for c := range numColumns {
		e.tables[c] = e.tables[c][:0]
		e.rows[c] = e.rows[c][:0]
	}
	for _, c := range stringColumns {
		if inDict(blockVersion, c) {
			e.dicts[c].reset()
		} else {
			e.locals[c].reset()
		}
	}
	clear(e.ips)
	clear(e.shapes)
	e.shapePrev = e.shapePrev[:0]
	e.ownerByKey = e.ownerByKey[:0]
	e.tierByKey = e.tierByKey[:0]
	e.keyRows = e.keyRows[:0]
	e.v4.reset()
}

// idAtPos is a dictionary id and its position in order of first use.
type idAtPos struct {
	id  uint64
	pos uint32
}

// encode appends a block holding recs to dst. recs must be sanitized and
// sorted by time; intern returns the dictionary id of a string.
func (e *blockEncoder) encode(dst []byte, recs []*Record, intern func(string) (uint64, error)) ([]byte, error) {
	if len(recs) == 0 || len(recs) > maxDecodeRecords {
		return dst, fmt.Errorf("metrics: block of %d records", len(recs))
	}
	e.reset()
	minT, maxT := recs[0].Time.UnixMicro(), recs[len(recs)-1].Time.UnixMicro()
	prevT := minT
	for _, r := range recs {
		t := r.Time.UnixMicro()
		if t < prevT {
			return dst, fmt.Errorf("metrics: block records not sorted by time")
		}
		e.rows[colTime] = binary.AppendUvarint(e.rows[colTime], uint64(t-prevT))
		prevT = t
		if err := e.encodeRecord(r, intern); err != nil {
			return dst, err
		}
	}

	if err := e.sortKeys(); err != nil {
		return dst, err
	}
	if e.version >= blockVersion4 {
		dst = appendBlockHeader(dst, blockVersion4, 0, len(recs), minT, maxT, e.keyList)
		return e.appendBodyV4(dst, len(recs)), nil
	}
	e.body = e.body[:0]
	for c := range numColumns {
		e.body = binary.AppendUvarint(e.body, uint64(len(e.tables[c])))
		e.body = append(e.body, e.tables[c]...)
		e.body = binary.AppendUvarint(e.body, uint64(len(e.rows[c])))
		e.body = append(e.body, e.rows[c]...)
	}

	flags := byte(0)
	payload := e.body
	if len(e.body) > 64 {
		e.zbuf.Reset()
		e.resetCompressor()
		_, _ = e.zw.Write(e.body) // writes to a bytes.Buffer do not fail
		_ = e.zw.Close()
		if e.zbuf.Len() < len(e.body) {
			flags |= blockFlagFlate
			payload = e.zbuf.Bytes()
		}
	}
	dst = appendBlockHeader(dst, e.version, flags, len(recs), minT, maxT, e.keyList)
	return append(dst, payload...), nil
}

// encodeRecord appends r's rows (all but the time's) to the columns.
func (e *blockEncoder) encodeRecord(r *Record, intern func(string) (uint64, error)) error {
	v4 := e.version >= blockVersion4
	if v4 {
		e.v4.addRequestID(e.requestIDShape(r.RequestID))
	} else {
		e.encodeRequestID(r.RequestID)
	}

	vals := [...]string{r.Method, r.Route, r.Path, r.KeyID, r.OwnerID, r.Tier, r.Country, r.UserAgent, r.Decision.String()}
	var keyPos uint32
	for i, c := range stringColumns {
		var p uint32
		if inDict(blockVersion, c) {
			var err error
			if p, err = e.dicts[c].position(vals[i], &e.tables[c], intern); err != nil {
				return err
			}
		} else {
			p = e.locals[c].position(vals[i], &e.tables[c])
		}
		if v4 && !v4InSelect(c) {
			e.v4.pos[c] = append(e.v4.pos[c], p) // rows written per segment
			continue
		}
		switch c {
		case colKey:
			keyPos = p
			for int(p) >= len(e.ownerByKey) {
				e.ownerByKey = append(e.ownerByKey, -1)
				e.tierByKey = append(e.tierByKey, -1)
			}
			e.keyRows = append(e.keyRows, p) // written once the table is sorted
		case colOwner:
			e.rows[c] = appendPredicted(e.rows[c], &e.ownerByKey[keyPos], p)
		case colTier:
			e.rows[c] = appendPredicted(e.rows[c], &e.tierByKey[keyPos], p)
		default:
			e.rows[c] = binary.AppendUvarint(e.rows[c], uint64(p))
		}
	}

	p, ok := e.ips[r.ClientIP]
	if !ok {
		p = uint32(len(e.ips))
		e.ips[r.ClientIP] = p
		e.numbs, _ = r.ClientIP.AppendBinary(e.numbs[:0])
		e.tables[colClientIP] = binary.AppendUvarint(e.tables[colClientIP], uint64(len(e.numbs)))
		e.tables[colClientIP] = append(e.tables[colClientIP], e.numbs...)
	}
	if v4 {
		e.v4.pos[colClientIP] = append(e.v4.pos[colClientIP], p)
	} else {
		e.rows[colClientIP] = binary.AppendUvarint(e.rows[colClientIP], uint64(p))
	}

	lat := uint64(r.Latency / time.Microsecond)
	up := uint64(r.UpstreamLatency / time.Microsecond)
	e.rows[colStatus] = binary.AppendUvarint(e.rows[colStatus], uint64(max(r.Status, 0)))
	e.rows[colLatency] = binary.AppendUvarint(e.rows[colLatency], lat)
	e.rows[colUpstream] = binary.AppendVarint(e.rows[colUpstream], int64(lat-up))
	e.rows[colRequestBytes] = binary.AppendUvarint(e.rows[colRequestBytes], uint64(r.RequestBytes))
	e.rows[colResponseBytes] = binary.AppendUvarint(e.rows[colResponseBytes], uint64(r.ResponseBytes))
	e.rows[colFlags] = append(e.rows[colFlags], byte(r.ErrorCategory)|byte(r.CacheStatus)<<4)
	if v4 {
		e.v4.endRow(&e.rows)
	}
	return nil
}

// resetCompressor points the compressor at e.zbuf, making it on first use.
func (e *blockEncoder) resetCompressor() {
	if e.zw == nil {
		e.zw, _ = flate.NewWriter(&e.zbuf, blockCompression)
	} else {
		e.zw.Reset(&e.zbuf)
	}
}

// sortKeys moves the key column's table to the header, sorted by id, and
// writes the key rows as positions in it. Sorted, the table is small
// without compression, and a reader looking for one key stops early.
func (e *blockEncoder) sortKeys() error {
	ids := e.dicts[colKey].ids
	e.keyOrder = e.keyOrder[:0]
	for p, id := range ids {
		e.keyOrder = append(e.keyOrder, idAtPos{id: id, pos: uint32(p)})
	}
	slices.SortFunc(e.keyOrder, func(a, b idAtPos) int { return cmp.Compare(a.id, b.id) })
	e.keyRank = slices.Grow(e.keyRank[:0], len(ids))[:len(ids)]
	e.keyList = e.keyList[:0]
	prev := uint64(0)
	for i, k := range e.keyOrder {
		delta := k.id - prev
		if i > 0 && delta == 0 {
			return fmt.Errorf("metrics: dictionary gave two keys id %d", k.id)
		}
		e.keyRank[k.pos] = uint32(i)
		e.keyList = binary.AppendUvarint(e.keyList, delta) // the first is the id itself
		prev = k.id
	}
	e.tables[colKey] = e.tables[colKey][:0]
	for _, p := range e.keyRows {
		e.rows[colKey] = binary.AppendUvarint(e.rows[colKey], uint64(e.keyRank[p]))
	}
	return nil
}

// appendPredicted writes 0 when p is the position last seen for the key,
// else p+1, and remembers p.
func appendPredicted(rows []byte, last *int64, p uint32) []byte {
	if *last == int64(p) {
		return append(rows, 0)
	}
	*last = int64(p)
	return binary.AppendUvarint(rows, uint64(p)+1)
}

// requestIDShape returns the position of id's shape in the block's table
// (adding it if new), whether the shape is numeric, and the number.
func (e *blockEncoder) requestIDShape(id string) (p uint32, numeric bool, num uint64) {
	shape, num := splitRequestID(id)
	p, ok := e.shapes[shape]
	if !ok {
		p = uint32(len(e.shapes))
		e.shapes[shape] = p
		e.shapePrev = append(e.shapePrev, 0)
		t := e.tables[colRequestID]
		t = binary.AppendUvarint(t, uint64(len(shape.prefix)))
		t = append(t, shape.prefix...)
		e.tables[colRequestID] = append(t, shape.mode)
	}
	return p, shape.mode != idLiteral, num
}

// encodeRequestID appends id's row, its number a delta from the one
// before of the same shape in the block.
func (e *blockEncoder) encodeRequestID(id string) {
	p, numeric, num := e.requestIDShape(id)
	e.rows[colRequestID] = appendRequestIDRow(e.rows[colRequestID], e.shapePrev, p, numeric, num)
}

// appendRequestIDRow appends a request id row: the shape position and,
// for a numeric shape, the delta from prev[p], which it then sets to num.
func appendRequestIDRow(rows []byte, prev []uint64, p uint32, numeric bool, num uint64) []byte {
	rows = binary.AppendUvarint(rows, uint64(p))
	if numeric {
		rows = binary.AppendVarint(rows, int64(num-prev[p]))
		prev[p] = num
	}
	return rows
}

// splitRequestID finds the decimal counter at the end of an id: the
// trailing digits (at most maxIDWidth of them) become the number, the rest
// the prefix. Digits with a leading zero keep their width.
func splitRequestID(id string) (idShape, uint64) {
	end := len(id)
	start := end
	for start > 0 && end-start < maxIDWidth && id[start-1] >= '0' && id[start-1] <= '9' {
		start--
	}
	if start == end {
		return idShape{prefix: id, mode: idLiteral}, 0
	}
	digits := id[start:]
	var n uint64
	for i := 0; i < len(digits); i++ {
		n = n*10 + uint64(digits[i]-'0')
	}
	mode := uint8(idNatural)
	if digits[0] == '0' && len(digits) > 1 {
		mode = uint8(len(digits))
	}
	return idShape{prefix: id[:start], mode: mode}, n
}

// blockColumn is one column section of a decoded body.
type blockColumn struct {
	table, rows []byte
	ascending   bool // table is a version-3 key list (see idList)
}

// blockDecoder decodes blocks; it keeps a decompressor and buffers
// between calls and is not safe for concurrent use.
type blockDecoder struct {
	zr   io.ReadCloser
	src  bytes.Reader
	body []byte
	view blockView
}

// blockView is a block opened for reading: its header and the columns
// read so far. For versions 1 to 3 that is every column; for version 4
// the select section's, until loadV4 adds the rest (see blockv4.go).
type blockView struct {
	h    blockHeader
	cols [numColumns]blockColumn
	v4   v4Parts
	slot []int32 // scratch of decodeColumns
}

// inflate appends the DEFLATE stream src, inflated, to dst; more than
// limit bytes is ErrCorruptBlock.
func (d *blockDecoder) inflate(src, dst []byte, limit int) ([]byte, error) {
	d.src.Reset(src)
	if d.zr == nil {
		d.zr = flate.NewReader(&d.src)
	} else if err := d.zr.(flate.Resetter).Reset(&d.src, nil); err != nil {
		return dst, fmt.Errorf("%w: %v", ErrCorruptBlock, err)
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := d.zr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst, fmt.Errorf("%w: body larger than %d bytes", ErrCorruptBlock, maxBlockBody)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, fmt.Errorf("%w: decompress: %v", ErrCorruptBlock, err)
		}
	}
}

// open reads what a filter needs of a block: for versions 1 to 3 the
// whole body, decompressed and split into columns; for version 4 the
// select section. The view and its slices are valid until the next call.
func (d *blockDecoder) open(h blockHeader, body []byte) (*blockView, error) {
	view := &d.view
	view.h = h
	if h.version >= blockVersion4 {
		return view, d.openV4(view, body)
	}
	cols := &view.cols
	if h.flags&blockFlagFlate != 0 {
		var err error
		if d.body, err = d.inflate(body, d.body[:0], maxBlockBody); err != nil {
			return view, err
		}
		body = d.body
	}
	r := byteReader{b: body}
	for c := range numColumns {
		cols[c].table = r.bytes(r.uvarint())
		cols[c].rows = r.bytes(r.uvarint())
		cols[c].ascending = false
	}
	if r.err != nil {
		return view, fmt.Errorf("%w: columns: %v", ErrCorruptBlock, r.err)
	}
	if len(r.b) != 0 {
		return view, fmt.Errorf("%w: %d bytes after the last column", ErrCorruptBlock, len(r.b))
	}
	if h.version >= blockVersion3 {
		if len(cols[colKey].table) != 0 {
			return view, fmt.Errorf("%w: key table in the body", ErrCorruptBlock)
		}
		cols[colKey].table, cols[colKey].ascending = h.keys, true
	}
	return view, nil
}

// load makes sure the rows sel selects (all when sel is nil) can be
// decoded: a no-op but for version 4, whose other sections it inflates
// as needed.
func (d *blockDecoder) load(view *blockView, sel []bool) error {
	if view.h.version < blockVersion4 {
		return nil
	}
	return d.loadV4(view, sel)
}

// decode appends the records of block b to out. resolve maps dictionary
// ids to strings. Every inconsistency is ErrCorruptBlock.
func (d *blockDecoder) decode(b []byte, resolve func(uint64) (string, error), out []Record) ([]Record, error) {
	h, body, err := parseBlockHeader(b)
	if err != nil {
		return out, err
	}
	view, err := d.open(h, body)
	if err != nil {
		return out, err
	}
	if err := d.load(view, nil); err != nil {
		return out, err
	}
	return decodeColumns(view, resolve, out, nil)
}

// decodeColumns appends the block's records to out: all of them when sel
// is nil, else only the rows i with sel[i] (in row order). Every row
// read is checked, so damage is found whatever is selected (of a
// version-4 block, the rows of the segments loaded); rows left out cost
// a varint read per column instead of strings and a Record.
func decodeColumns(view *blockView, resolve func(uint64) (string, error), out []Record, sel []bool) ([]Record, error) {
	h, cols := view.h, view.cols
	n := h.count
	// Every row takes at least one byte of the time column, so a header
	// that claims more records than that is lying; check before allocating.
	if len(cols[colTime].rows) < n || (sel != nil && len(sel) != n) {
		return out, fmt.Errorf("%w: time column shorter than %d records", ErrCorruptBlock, n)
	}
	var selected int
	view.slot, selected = selectedSlots(view.slot, n, sel)
	slot := view.slot
	base := len(out)
	out = append(out, make([]Record, selected)...)
	recs := out[base:]
	if err := decodeTimes(h, cols[colTime], slot, recs); err != nil {
		return out[:base], err
	}
	if h.version >= blockVersion4 {
		if err := decodeV4(view, resolve, slot, recs); err != nil {
			return out[:base], err
		}
		return out, nil
	}
	if err := decodeRequestIDs(cols[colRequestID], n, slot, recs); err != nil {
		return out[:base], corruptColumn("request id", err)
	}
	if err := decodeStrings(h, &cols, stringColumns[:], resolve, slot, recs); err != nil {
		return out[:base], err
	}
	ips, err := loadClientIPs(cols[colClientIP].table, n)
	if err != nil {
		return out[:base], err
	}
	if err := decodeClientIPRows(ips, cols[colClientIP].rows, slot, recs); err != nil {
		return out[:base], err
	}
	if err := decodeNumbers(&cols, slot, recs); err != nil {
		return out[:base], err
	}
	if err := decodeFlags(cols[colFlags], slot, recs); err != nil {
		return out[:base], err
	}
	return out, nil
}

// corruptColumn is the error for damage found in one column.
func corruptColumn(col string, err error) error {
	return fmt.Errorf("%w: %s column: %v", ErrCorruptBlock, col, err)
}

// selectedSlots maps each of n rows to its index among the selected rows
// (all of them when sel is nil), -1 when it is not selected, in slot
// (reused when it is large enough), and counts the selected rows.
func selectedSlots(slot []int32, n int, sel []bool) ([]int32, int) {
	if cap(slot) < n {
		slot = make([]int32, n)
	}
	slot = slot[:n]
	selected := 0
	for i := range slot {
		if sel == nil || sel[i] {
			slot[i] = int32(selected)
			selected++
		} else {
			slot[i] = -1
		}
	}
	return slot, selected
}

// decodeStrings reads the given string columns, in the order of
// stringColumns: the key first, so that the owner and tier rows it
// predicts can be read.
func decodeStrings(h blockHeader, cols *[numColumns]blockColumn, columns []int, resolve func(uint64) (string, error), slot []int32, recs []Record) error {
	n := len(slot)
	var keyPos []uint32 // each row's position in the key table
	keys := 0           // distinct keys in the block
	var table stringTable
	for _, c := range columns {
		if err := table.load(cols[c], n, inDict(h.version, c), resolve); err != nil {
			return corruptColumn(columnName(c), err)
		}
		var last []int64 // for a predicted column, the value last seen with each key
		switch c {
		case colKey:
			keys = table.len()
			keyPos = make([]uint32, n)
		case colOwner, colTier:
			last = make([]int64, keys)
			for i := range last {
				last[i] = -1
			}
		}
		if err := decodeStringRows(c, cols[c].rows, &table, keyPos, last, slot, recs); err != nil {
			return corruptColumn(columnName(c), err)
		}
	}
	return nil
}

// decodeStringRows reads the rows of string column c as positions in
// table. For the key column it fills keyPos; for a column the key
// predicts (last is not nil) a row of 0 repeats last[key].
func decodeStringRows(c int, rows []byte, table *stringTable, keyPos []uint32, last []int64, slot []int32, recs []Record) error {
	r := byteReader{b: rows}
	for i, o := range slot {
		v := r.uvarint()
		if last != nil { // predicted by the key
			k := keyPos[i]
			if int(k) >= len(last) {
				return fmt.Errorf("key position %d", k)
			}
			if v == 0 {
				if last[k] < 0 {
					return fmt.Errorf("record %d predicts an unseen value", i)
				}
				v = uint64(last[k])
			} else {
				v--
				last[k] = int64(v)
			}
		}
		if v >= uint64(table.len()) {
			return fmt.Errorf("record %d: position %d of %d", i, v, table.len())
		}
		if c == colKey {
			keyPos[i] = uint32(v)
		}
		if o >= 0 {
			setStringField(&recs[o], c, table.get(int(v)))
		}
	}
	return finish(&r)
}

// setStringField sets the field of rec that string column c holds.
func setStringField(rec *Record, c int, s string) {
	switch c {
	case colMethod:
		rec.Method = s
	case colRoute:
		rec.Route = s
	case colPath:
		rec.Path = s
	case colKey:
		rec.KeyID = s
	case colOwner:
		rec.OwnerID = s
	case colTier:
		rec.Tier = s
	case colCountry:
		rec.Country = s
	case colUserAgent:
		rec.UserAgent = s
	case colDecision:
		rec.Decision, _ = decision.Parse(s) // every stored code was parsed or made by enforce
	}
}

// loadClientIPs reads a client IP table: a block-local table of
// addresses, at most n of them.
func loadClientIPs(table []byte, n int) ([]netip.Addr, error) {
	rawIPs, err := rawTable(table, n)
	if err != nil {
		return nil, corruptColumn("client ip", err)
	}
	ips := make([]netip.Addr, len(rawIPs))
	for j, raw := range rawIPs {
		if err := ips[j].UnmarshalBinary(raw); err != nil {
			return nil, corruptColumn("client ip", err)
		}
	}
	return ips, nil
}

// decodeClientIPRows reads the client IP rows: a position in ips per row.
func decodeClientIPRows(ips []netip.Addr, rows []byte, slot []int32, recs []Record) error {
	r := byteReader{b: rows}
	for i, o := range slot {
		v := r.uvarint()
		if v >= uint64(len(ips)) {
			return corruptColumn("client ip", fmt.Errorf("record %d: position %d", i, v))
		}
		if o >= 0 {
			recs[o].ClientIP = ips[v]
		}
	}
	if err := finish(&r); err != nil {
		return corruptColumn("client ip", err)
	}
	return nil
}

// decodeNumbers reads the status, latency, upstream latency and byte
// count columns together, a record at a time, checking each is in range.
func decodeNumbers(cols *[numColumns]blockColumn, slot []int32, recs []Record) error {
	const maxMicros = math.MaxInt64 / int64(time.Microsecond)
	for _, c := range [...]int{colStatus, colLatency, colUpstream, colRequestBytes, colResponseBytes} {
		if len(cols[c].table) != 0 {
			return corruptColumn(columnName(c), fmt.Errorf("unexpected table"))
		}
	}
	rs := byteReader{b: cols[colStatus].rows}
	rl := byteReader{b: cols[colLatency].rows}
	ru := byteReader{b: cols[colUpstream].rows}
	rq := byteReader{b: cols[colRequestBytes].rows}
	rp := byteReader{b: cols[colResponseBytes].rows}
	for i, o := range slot {
		status, lat, diff, in, outb := rs.uvarint(), rl.uvarint(), ru.varint(), rq.uvarint(), rp.uvarint()
		if status > 999 || lat > uint64(maxMicros) || in > math.MaxInt64 || outb > math.MaxInt64 {
			return corruptColumn("number", fmt.Errorf("record %d out of range", i))
		}
		up := int64(lat) - diff
		if (diff < 0 && up < int64(lat)) || up < 0 || up > maxMicros {
			return corruptColumn("upstream", fmt.Errorf("record %d out of range", i))
		}
		if o >= 0 {
			rec := &recs[o]
			rec.Status = int(status)
			rec.Latency = time.Duration(lat) * time.Microsecond
			rec.UpstreamLatency = time.Duration(up) * time.Microsecond
			rec.RequestBytes = int64(in)
			rec.ResponseBytes = int64(outb)
		}
	}
	for _, rr := range []*byteReader{&rs, &rl, &ru, &rq, &rp} {
		if err := finish(rr); err != nil {
			return corruptColumn("number", err)
		}
	}
	return nil
}

// decodeFlags reads the flags column: a byte a row, error category in
// the low nibble, cache status in the high one.
func decodeFlags(col blockColumn, slot []int32, recs []Record) error {
	if len(col.table) != 0 || len(col.rows) != len(slot) {
		return corruptColumn("flags", fmt.Errorf("%d bytes for %d records", len(col.rows), len(slot)))
	}
	for i, f := range col.rows {
		ec, cs := ErrorCategory(f&0x0f), CacheStatus(f>>4)
		if ec >= errorCategoryCount || cs >= cacheStatusCount {
			return corruptColumn("flags", fmt.Errorf("record %d: %#x", i, f))
		}
		if o := slot[i]; o >= 0 {
			recs[o].ErrorCategory, recs[o].CacheStatus = ec, cs
		}
	}
	return nil
}

// finish checks that a column's rows were read exactly.
func finish(r *byteReader) error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%d bytes left over", len(r.b))
	}
	return nil
}

// stringTable holds the strings of one string column's table while a
// block is decoded. Dictionary ids are resolved up front (the resolver
// caches them); block-local entries become strings only when a selected
// row uses them, so a page of a few rows does not copy a block's worth of
// long paths or user agents.
type stringTable struct {
	strs []string
	raw  [][]byte // block-local entries; nil for a dictionary column
	made []bool
}

func (t *stringTable) load(col blockColumn, n int, dict bool, resolve func(uint64) (string, error)) error {
	t.strs, t.raw, t.made = t.strs[:0], nil, t.made[:0]
	if !dict {
		raw, err := rawTable(col.table, n)
		if err != nil {
			return err
		}
		t.raw = raw
		t.strs = append(t.strs, make([]string, len(raw))...)
		t.made = append(t.made, make([]bool, len(raw))...)
		return nil
	}
	l := newIDList(col)
	for {
		id, ok := l.next()
		if !ok {
			return l.err()
		}
		if len(t.strs) >= n {
			return fmt.Errorf("more table entries than records")
		}
		s, err := resolve(id)
		if err != nil {
			return err
		}
		t.strs = append(t.strs, s)
	}
}

func (t *stringTable) len() int { return len(t.strs) }

func (t *stringTable) get(p int) string {
	if t.raw != nil && !t.made[p] {
		t.strs[p], t.made[p] = string(t.raw[p]), true
	}
	return t.strs[p]
}

// rawTable splits a table of length-prefixed entries (paths, addresses).
func rawTable(table []byte, n int) ([][]byte, error) {
	var entries [][]byte
	r := byteReader{b: table}
	for len(r.b) > 0 && r.err == nil {
		if len(entries) >= n {
			return nil, fmt.Errorf("more table entries than records")
		}
		entries = append(entries, r.bytes(r.uvarint()))
	}
	return entries, r.err
}

// localPosition returns the position of s in a block-local column's
// table, or -1.
func localPosition(col blockColumn, s string) int {
	r := byteReader{b: col.table}
	for p := 0; len(r.b) > 0 && r.err == nil; p++ {
		if e := r.bytes(r.uvarint()); r.err == nil && string(e) == s {
			return p
		}
	}
	return -1
}

// decodeRequestIDs reads a request id column of n records.
func decodeRequestIDs(col blockColumn, n int, slot []int32, recs []Record) error {
	shapes, err := parseIDShapes(col.table, n)
	if err != nil {
		return err
	}
	return decodeRequestIDRows(shapes, col.rows, slot, recs)
}

// parseIDShapes reads a request id table of at most n shapes.
func parseIDShapes(table []byte, n int) ([]idShape, error) {
	var shapes []idShape
	r := byteReader{b: table}
	for len(r.b) > 0 && r.err == nil {
		if len(shapes) >= n {
			return nil, fmt.Errorf("more shapes than records")
		}
		prefix := r.bytes(r.uvarint())
		mode := r.byte()
		if r.err == nil && mode > maxIDWidth {
			return nil, fmt.Errorf("shape mode %d", mode)
		}
		shapes = append(shapes, idShape{prefix: string(prefix), mode: mode})
	}
	return shapes, r.err
}

// decodeRequestIDRows reads request id rows, a row per slot, each
// number a delta from the one before of its shape in rows.
func decodeRequestIDRows(shapes []idShape, rows []byte, slot []int32, recs []Record) error {
	prev := make([]uint64, len(shapes))
	const limit = 1_000_000_000_000_000_000 // 10^18: maxIDWidth digits
	r := byteReader{b: rows}
	var digits [maxIDWidth]byte
	for i, o := range slot {
		p := r.uvarint()
		if r.err != nil {
			return r.err
		}
		if p >= uint64(len(shapes)) {
			return fmt.Errorf("record %d: shape %d of %d", i, p, len(shapes))
		}
		s := shapes[p]
		if s.mode == idLiteral {
			if o >= 0 {
				recs[o].RequestID = s.prefix
			}
			continue
		}
		delta := r.varint()
		v := int64(prev[p]) + delta
		if r.err != nil || (delta > 0 && v < 0) || v < 0 || v >= limit {
			return fmt.Errorf("record %d: number out of range", i)
		}
		prev[p] = uint64(v)
		num := strconv.AppendUint(digits[:0], uint64(v), 10)
		width := int(s.mode)
		if s.mode == idNatural {
			width = len(num)
		} else if len(num) > width {
			return fmt.Errorf("record %d: number wider than %d digits", i, width)
		}
		if o < 0 {
			continue
		}
		id := make([]byte, 0, len(s.prefix)+width)
		id = append(id, s.prefix...)
		for range width - len(num) {
			id = append(id, '0')
		}
		recs[o].RequestID = string(append(id, num...))
	}
	return finish(&r)
}

func columnName(c int) string {
	return [numColumns]string{"time", "request id", "method", "route", "path", "status", "latency",
		"upstream latency", "request bytes", "response bytes", "key", "owner", "tier", "client ip",
		"country", "user agent", "flags", "decision"}[c]
}
