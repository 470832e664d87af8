package metrics

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/apiwarden/apiwarden/store"
)

// Reader answers queries over what Recorders wrote: rollup cells and raw
// records. Each call runs in one read transaction, so it sees one
// consistent snapshot and never blocks the writer. A Reader is safe for
// concurrent use.
type Reader struct {
	st       *store.Store
	dict     *dictReader
	decoders sync.Pool // *blockDecoder
}

// NewReader returns a Reader over st.
func NewReader(st *store.Store) *Reader {
	return &Reader{st: st, dict: newDictReader()}
}

// CellQuery selects rollup cells.
type CellQuery struct {
	Interval  Interval
	Dimension Dimension
	// Value selects one value of the dimension ("" for DimTotal, "2xx"
	// for DimStatusClass). It is ignored when AllValues is set.
	Value     string
	AllValues bool
	// From and To select the cells whose interval overlaps [From, To): the
	// cell holding From is included, a cell starting at To is not. A zero
	// To means no upper bound.
	From, To time.Time
}

func (q *CellQuery) check() error {
	if !q.Interval.valid() {
		return fmt.Errorf("%w: interval %v", ErrBadQuery, q.Interval)
	}
	if !q.Dimension.valid() {
		return fmt.Errorf("%w: dimension %v", ErrBadQuery, q.Dimension)
	}
	if !q.To.IsZero() && !q.To.After(q.From) {
		return fmt.Errorf("%w: to (%s) must be after from (%s)", ErrBadQuery, q.To, q.From)
	}
	return nil
}

// span returns the first and last interval numbers the query covers.
func (q *CellQuery) span() (lo, hi uint32) {
	lo = q.Interval.number(q.From)
	hi = math.MaxUint32
	if !q.To.IsZero() {
		hi = q.Interval.number(q.To.Add(-time.Nanosecond))
	}
	return lo, hi
}

// ScanCells calls fn for every stored cell that q selects, value by value
// (in storage order: by length, then bytes) and by time within a value.
// Buckets without traffic have no cell and are not visited. c is reused
// between calls: copy it (Clone) to keep it. ScanCells returns
// ErrBadQuery for an invalid query, the first error fn returns, or
// ErrCorruptCell.
func (r *Reader) ScanCells(ctx context.Context, q CellQuery, fn func(value string, start time.Time, c *Cell) error) error {
	if err := q.check(); err != nil {
		return err
	}
	lo, hi := q.span()
	return r.st.View(func(tx *store.Tx) error {
		b, err := tx.MustBucket(q.Interval.bucket())
		if err != nil {
			return err
		}
		c := b.Cursor()
		var cell Cell
		visit := func(value string, k, v []byte, n uint32) error {
			if err := cell.decode(v); err != nil {
				return fmt.Errorf("%w (cell %s %q %s)", err, q.Dimension, value, q.Interval.start(n))
			}
			return fn(value, q.Interval.start(n), &cell)
		}
		if !q.AllValues {
			prefix := appendValuePrefix(nil, q.Dimension, q.Value)
			seek := binary.BigEndian.AppendUint32(bytes.Clone(prefix), lo)
			for k, v := c.Seek(seek); k != nil; k, v = c.Next() {
				if len(k) != len(prefix)+4 || !bytes.HasPrefix(k, prefix) {
					break
				}
				n := binary.BigEndian.Uint32(k[len(prefix):])
				if n > hi {
					break
				}
				if err := visit(q.Value, k, v, n); err != nil {
					return err
				}
			}
			return ctx.Err()
		}
		var lastValue []byte
		var value string
		visited := 0
		k, v := c.Seek([]byte{byte(q.Dimension)})
		for k != nil && k[0] == byte(q.Dimension) {
			if visited++; visited%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			dim, raw, n, ok := parseCellKey(k)
			switch {
			case !ok:
				k, v = c.Next()
				continue
			case n < lo:
				k, v = c.Seek(binary.BigEndian.AppendUint32(appendValuePrefix(nil, dim, string(raw)), lo))
				continue
			case n > hi:
				k, v = c.Seek(append(appendValuePrefix(nil, dim, string(raw)), 0xff, 0xff, 0xff, 0xff, 0xff))
				continue
			}
			if !bytes.Equal(raw, lastValue) {
				value = string(raw)
				lastValue = append(lastValue[:0], raw...)
			}
			if err := visit(value, k, v, n); err != nil {
				return err
			}
			k, v = c.Next()
		}
		return ctx.Err()
	})
}

// Point is the cell of one interval of a series.
type Point struct {
	Start time.Time // start of the UTC hour or day
	Cell  Cell
}

// Series is the cells of one dimension value over time.
type Series struct {
	Value  string
	Points []Point // in time order; intervals without traffic are absent
}

// Series returns the cells q selects, one Series per value, sorted by
// value. Errors as ScanCells.
func (r *Reader) Series(ctx context.Context, q CellQuery) ([]Series, error) {
	var out []Series
	err := r.ScanCells(ctx, q, func(value string, start time.Time, c *Cell) error {
		if len(out) == 0 || out[len(out)-1].Value != value {
			out = append(out, Series{Value: value})
		}
		s := &out[len(out)-1]
		s.Points = append(s.Points, Point{Start: start, Cell: c.Clone()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Series) int { return cmp.Compare(a.Value, b.Value) })
	return out, nil
}

// ValueCell is the merged cell of one dimension value.
type ValueCell struct {
	Value string
	Cell  Cell
}

// Totals merges the cells q selects into one cell per value, sorted by
// Count, largest first (then by value): the first n are the top n.
// Errors as ScanCells.
func (r *Reader) Totals(ctx context.Context, q CellQuery) ([]ValueCell, error) {
	var out []ValueCell
	err := r.ScanCells(ctx, q, func(value string, _ time.Time, c *Cell) error {
		if len(out) == 0 || out[len(out)-1].Value != value {
			out = append(out, ValueCell{Value: value})
		}
		out[len(out)-1].Cell.Merge(c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b ValueCell) int {
		if c := cmp.Compare(b.Cell.Count, a.Cell.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	return out, nil
}

// Sum merges every cell q selects into one. Errors as ScanCells.
func (r *Reader) Sum(ctx context.Context, q CellQuery) (Cell, error) {
	var sum Cell
	err := r.ScanCells(ctx, q, func(_ string, _ time.Time, c *Cell) error {
		sum.Merge(c)
		return nil
	})
	return sum, err
}

// Order is the direction of a raw record scan.
type Order uint8

// The orders. Raw records are ordered by UTC day, then by the block they
// were written in (write order), then by time within the block. Within a
// day that is time order except for records that arrived late (ingested
// events, or a flush delayed by a failure).
const (
	NewestFirst Order = iota
	OldestFirst
)

// Limits on a page of raw records.
const (
	DefaultRecordLimit = 100
	MaxRecordLimit     = 10000
)

// RecordQuery selects raw records. Every non-empty filter must match.
type RecordQuery struct {
	From, To    time.Time // [From, To); zero means unbounded
	KeyID       string
	Route       string
	Method      string
	Status      int // exact status when non-zero
	StatusClass int // 1 … 5 for 1xx … 5xx when non-zero
	Order       Order
	Limit       int    // records per page: 0 means DefaultRecordLimit, at most MaxRecordLimit
	Cursor      string // RecordPage.Next of the previous page, "" to start
}

// RecordPage is one page of raw records.
type RecordPage struct {
	Records []Record
	// Next resumes after the last record of this page. It is "" when the
	// scan reached the end; a full page always has one, which may lead to
	// an empty page.
	Next string
}

// position is where a scan stands: the day bucket, the block key and the
// record's index in the block. Blocks are immutable and new ones only get
// larger keys, so a position means the same thing however much is written
// after it: pages never repeat or skip a record that existed when the
// scan began.
type position struct {
	order Order
	day   uint32
	seq   uint64
	index int
}

const cursorVersion = 1

func (p position) encode() string {
	b := []byte{cursorVersion, byte(p.order)}
	b = binary.BigEndian.AppendUint32(b, p.day)
	b = binary.BigEndian.AppendUint64(b, p.seq)
	b = binary.AppendUvarint(b, uint64(p.index))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, order Order) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 15 || b[0] != cursorVersion {
		return position{}, ErrBadCursor
	}
	p := position{order: Order(b[1]), day: binary.BigEndian.Uint32(b[2:]), seq: binary.BigEndian.Uint64(b[6:])}
	idx, n := binary.Uvarint(b[14:])
	if n <= 0 || 14+n != len(b) || idx >= maxDecodeRecords || p.order != order {
		return position{}, ErrBadCursor
	}
	p.index = int(idx)
	return p, nil
}

// recordFilter holds a query's filters resolved against the dictionary.
type recordFilter struct {
	q                  *RecordQuery
	fromMicro, toMicro int64           // records are stored at µs precision
	strs               [3]stringFilter // key, route, method: see filterKey
}

// The index of each string filter in recordFilter.strs.
const (
	filterKey = iota
	filterRoute
	filterMethod
)

// stringFilter is a filter on one string column. Which blocks hold the
// column in the dictionary depends on their version, so it keeps the
// string and, if the dictionary has it, its id.
type stringFilter struct {
	col    int
	s      string
	id     uint64
	inDict bool // the dictionary has s; else no block that interns col can match
}

// selective reports whether the filters can leave most rows of a block
// out (key, route, method, status), so that a page reads many blocks.
func (f *recordFilter) selective() bool {
	q := f.q
	return q.KeyID != "" || q.Route != "" || q.Method != "" || q.Status != 0 || q.StatusClass != 0
}

func (f *recordFilter) match(rec *Record) bool {
	q := f.q
	t := rec.Time.UnixMicro()
	return t >= f.fromMicro && t < f.toMicro &&
		(q.KeyID == "" || rec.KeyID == q.KeyID) &&
		(q.Route == "" || rec.Route == q.Route) &&
		(q.Method == "" || rec.Method == q.Method) &&
		(q.Status == 0 || rec.Status == q.Status) &&
		(q.StatusClass == 0 || rec.StatusClass() == q.StatusClass)
}

// selectRows marks in sel the rows of an opened block that may match,
// reading only the filtered columns (dictionary positions, times,
// statuses), so a block is decoded only for its matching rows and
// skipped when it has none. It reports whether any row is selected. Of a
// version-4 block it reads only the select section (key and time);
// selectSegmentRows applies the other filters once the segments are
// loaded.
func (f *recordFilter) selectRows(view *blockView, sel []bool) (bool, error) {
	h, cols := view.h, &view.cols
	for i := range sel {
		sel[i] = true
	}
	v4 := h.version >= blockVersion4
	for _, df := range &f.strs {
		if df.s == "" || (v4 && !v4InSelect(df.col)) {
			continue
		}
		if v4 && df.col == colKey {
			if hit, err := f.selectKeyV4(&view.v4, cols[colKey].rows, sel); err != nil || !hit {
				return false, err
			}
			continue
		}
		p, err := df.position(h.version, cols[df.col])
		if err != nil {
			return false, err
		}
		if p < 0 {
			return false, nil
		}
		if err := selectRows(cols[df.col], p, sel); err != nil {
			return false, fmt.Errorf("%w: %s column: %v", ErrCorruptBlock, columnName(df.col), err)
		}
	}
	if h.minTime < f.fromMicro || h.maxTime >= f.toMicro {
		if err := selectTimes(h, cols[colTime].rows, f.fromMicro, f.toMicro, sel); err != nil {
			return false, fmt.Errorf("%w: time column: %v", ErrCorruptBlock, err)
		}
	}
	if f.filtersStatus() && !v4 {
		r := byteReader{b: cols[colStatus].rows}
		for i := range sel {
			if !f.statusWanted(r.uvarint()) {
				sel[i] = false
			}
		}
		if r.err != nil {
			return false, fmt.Errorf("%w: status column: %v", ErrCorruptBlock, r.err)
		}
	}
	return slices.Contains(sel, true), nil
}

// selectKeyV4 clears in sel the rows of a version-4 block that are not
// of the filtered key, and reports whether any is. It maps the block's
// rows to key ranks (which loadV4 needs anyway) and compares the ranks:
// one pass over the key rows, not two.
func (f *recordFilter) selectKeyV4(p *v4Parts, keyRows []byte, sel []bool) (bool, error) {
	key := &f.strs[filterKey]
	if !key.inDict {
		return false, nil
	}
	rank, found := slices.BinarySearch(p.keyIDs, key.id)
	if !found {
		return false, nil
	}
	if err := p.mapRows(keyRows, len(sel)); err != nil {
		return false, err
	}
	hit := false
	for i, r := range p.rowRank {
		if r != uint32(rank) {
			sel[i] = false
		} else {
			hit = hit || sel[i]
		}
	}
	return hit, nil
}

// position returns the position of the filter's string in the table of
// col (a block of the given version), or -1.
func (df *stringFilter) position(version byte, col blockColumn) (int, error) {
	switch {
	case !inDict(version, df.col):
		return localPosition(col, df.s), nil
	case df.inDict:
		p, err := dictPosition(col, df.id)
		if err != nil {
			return -1, fmt.Errorf("%w: %s table: %v", ErrCorruptBlock, columnName(df.col), err)
		}
		return p, nil
	}
	return -1, nil
}

// filtersStatus reports whether the query filters on the status.
func (f *recordFilter) filtersStatus() bool {
	return f.q.Status != 0 || f.q.StatusClass != 0
}

// statusWanted reports whether a stored status passes the status filters.
func (f *recordFilter) statusWanted(v uint64) bool {
	st := int(min(v, 1000))
	return (f.q.Status == 0 || st == f.q.Status) && (f.q.StatusClass == 0 || (st >= 100 && st <= 599 && st/100 == f.q.StatusClass))
}

// Records returns one page of raw records in q.Order. Pass the page's Next
// as q.Cursor (with the same query) for the next page. It returns
// ErrBadCursor for a cursor it did not produce or one of the other order,
// ErrBadQuery for an empty time range and ErrCorruptBlock for a damaged
// block.
func (r *Reader) Records(ctx context.Context, q RecordQuery) (RecordPage, error) {
	var page RecordPage
	if q.Order != NewestFirst && q.Order != OldestFirst {
		return page, fmt.Errorf("%w: order %d", ErrBadQuery, q.Order)
	}
	if !q.To.IsZero() && !q.To.After(q.From) {
		return page, fmt.Errorf("%w: to (%s) must be after from (%s)", ErrBadQuery, q.To, q.From)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultRecordLimit
	}
	limit = min(limit, MaxRecordLimit)
	var start *position
	if q.Cursor != "" {
		p, err := decodeCursor(q.Cursor, q.Order)
		if err != nil {
			return page, err
		}
		start = &p
	}
	f := recordFilter{q: &q, fromMicro: math.MinInt64, toMicro: math.MaxInt64}
	f.strs[filterKey] = stringFilter{col: colKey, s: q.KeyID}
	f.strs[filterRoute] = stringFilter{col: colRoute, s: q.Route}
	f.strs[filterMethod] = stringFilter{col: colMethod, s: q.Method}
	dayLo, dayHi := uint32(0), Daily.number(maxRecordTime)
	if !q.From.IsZero() {
		f.fromMicro = ceilMicro(q.From)
		dayLo = Daily.number(q.From)
	}
	if !q.To.IsZero() {
		f.toMicro = ceilMicro(q.To)
		dayHi = min(dayHi, Daily.number(q.To.Add(-time.Nanosecond)))
	}

	var decs [jobsAhead + 1]*blockDecoder // one per blockJob slot
	for i := range decs {
		if decs[i], _ = r.decoders.Get().(*blockDecoder); decs[i] == nil {
			decs[i] = new(blockDecoder)
		}
		defer r.decoders.Put(decs[i])
	}

	err := r.st.View(func(tx *store.Tx) error {
		for i := range f.strs {
			sf := &f.strs[i]
			if sf.s == "" {
				continue
			}
			sf.id, sf.inDict = lookupDictID(tx, sf.s)
			// Key and route are interned by every block version, so
			// one the dictionary lacks was never recorded. A method may
			// still be in version-2 blocks.
			if !sf.inDict && inDict(blockVersion, sf.col) {
				return nil
			}
		}
		raw, err := tx.MustBucket(store.BucketRaw)
		if err != nil {
			return err
		}
		resolve := r.dict.resolver(tx)
		s := scan{q: &q, f: &f, resolve: resolve, limit: limit, start: start, page: &page, ctx: ctx}
		for i := range s.jobs {
			s.jobs[i].dec = decs[i]
		}
		s.async = f.selective() && runtime.GOMAXPROCS(0) > 1
		defer s.wait() // a job in flight reads the transaction's memory
		if err := s.days(raw, dayLo, dayHi); err != nil {
			return err
		}
		return s.drain()
	})
	if err != nil {
		return RecordPage{}, err
	}
	return page, nil
}

// scan walks day buckets and blocks for Records.
type scan struct {
	ctx     context.Context
	q       *RecordQuery
	f       *recordFilter
	resolve func(uint64) (string, error)
	limit   int
	start   *position
	page    *RecordPage
	recs    []Record // decoded rows of the current block
	sel     []bool   // which rows of the current block to decode
	rows    []int    // the block row index of each of recs

	// async runs each block's job (see blockJob) in its own goroutine,
	// up to jobsAhead of them ahead of the block being decoded. Job n
	// uses slot n mod len(jobs); jobs from finished to started-1 are in
	// flight.
	async             bool
	jobs              [jobsAhead + 1]blockJob
	started, finished int
}

// jobsAhead is how many blocks a selective scan inflates ahead of the one
// it decodes, and so how many blocks' work a page that ends early wastes.
// Two measured no faster than one on a 2-core machine.
const jobsAhead = 1

func (s *scan) days(raw *store.Bucket, dayLo, dayHi uint32) error {
	newest := s.q.Order == NewestFirst
	if s.start != nil {
		if newest {
			dayHi = min(dayHi, s.start.day)
		} else {
			dayLo = max(dayLo, s.start.day)
		}
	}
	if dayLo > dayHi {
		return nil
	}
	c := raw.Cursor()
	var k, v []byte
	if newest {
		k, v = c.Seek(dayName(dayHi))
		if k == nil {
			k, v = c.Last()
		} else if !bytes.Equal(k, dayName(dayHi)) {
			k, v = c.Prev()
		}
	} else {
		k, v = c.Seek(dayName(dayLo))
	}
	for ; k != nil; k, v = step(c, newest) {
		if v != nil {
			continue
		}
		day, ok := parseDayName(k)
		if !ok {
			continue
		}
		if (newest && day < dayLo) || (!newest && day > dayHi) {
			return nil
		}
		b := raw.Bucket(k)
		if b == nil {
			continue
		}
		full, err := s.blocks(b, day)
		if err != nil || full {
			return err
		}
	}
	return nil
}

func step(c *store.Cursor, newest bool) ([]byte, []byte) {
	if newest {
		return c.Prev()
	}
	return c.Next()
}

// blocks scans one day; full reports that the page is complete.
func (s *scan) blocks(b *store.Bucket, day uint32) (full bool, err error) {
	newest := s.q.Order == NewestFirst
	c := b.Cursor()
	for k, v := s.firstBlock(c, day); k != nil; k, v = step(c, newest) {
		if err := s.ctx.Err(); err != nil {
			return false, err
		}
		if v == nil || len(k) != 8 {
			continue
		}
		full, err := s.block(day, binary.BigEndian.Uint64(k), v)
		if err != nil {
			return false, err
		}
		if full {
			return true, nil
		}
	}
	return false, nil
}

// firstBlock moves c to the block the scan of a day starts at: the
// cursor's block (or the nearest one in the scan's direction) when the
// scan resumes in this day, else the day's last block newest first and
// its first one oldest first.
func (s *scan) firstBlock(c *store.Cursor, day uint32) (k, v []byte) {
	newest := s.q.Order == NewestFirst
	switch {
	case s.start != nil && s.start.day == day:
		want := blockKey(s.start.seq)
		k, v = c.Seek(want)
		switch {
		case newest && k == nil:
			return c.Last()
		case newest && !bytes.Equal(k, want):
			return c.Prev()
		}
		return k, v
	case newest:
		return c.Last()
	default:
		return c.First()
	}
}

// block adds to the page the records of block seq of a day (its value v)
// that match the query, in the scan's order; full reports that the page
// is complete. Without async it reads the block at once; with async it
// starts the block's job and, once jobsAhead are in flight, finishes the
// oldest, so the page may be completed by an earlier block.
func (s *scan) block(day uint32, seq uint64, v []byte) (full bool, err error) {
	h, body, err := parseBlockHeader(v)
	if err != nil {
		return false, blockError(err, day, seq)
	}
	if h.maxTime < s.f.fromMicro || h.minTime >= s.f.toMicro {
		return false, nil
	}
	if key := &s.f.strs[filterKey]; key.s != "" {
		// Records returned early if the dictionary lacks the key.
		if ok, err := h.mayHoldKey(key.id); err != nil || !ok {
			return false, blockError(err, day, seq)
		}
	}
	j := &s.jobs[s.started%len(s.jobs)]
	s.started++
	j.day, j.seq, j.h, j.done = day, seq, h, make(chan struct{})
	if !s.async {
		j.run(s.f, body)
		s.finished++
		return s.finish(j)
	}
	go j.run(s.f, body)
	if s.started-s.finished <= jobsAhead {
		return false, nil
	}
	oldest := &s.jobs[s.finished%len(s.jobs)]
	s.finished++
	return s.finish(oldest)
}

// blockError names the block an error was found in; nil stays nil.
func blockError(err error, day uint32, seq uint64) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (day %s block %d)", err, dayName(day), seq)
}

// blockJob is the part of reading a block that needs nothing of the page
// being built: inflating the body (of a version-4 block, the sections
// that hold the selected rows) and marking the rows the filters select. It is most of the cost of a block, so a selective scan runs it
// for the next block while it decodes the current one.
type blockJob struct {
	day  uint32
	seq  uint64
	h    blockHeader
	dec  *blockDecoder // owned by the job's slot; view points into it
	view *blockView
	sel  []bool
	hit  bool
	err  error
	done chan struct{} // closed when the fields above are set
}

// run inflates body and selects rows, then closes done. It only reads f,
// and body must stay valid (inside the transaction) until done is closed.
// A panic becomes ErrCorruptBlock, as store.View does for the reads that
// stay on its goroutine: in a goroutine of its own it would end the process.
func (j *blockJob) run(f *recordFilter, body []byte) {
	defer close(j.done)
	defer func() {
		if r := recover(); r != nil {
			j.err = fmt.Errorf("%w: panic while reading: %v", ErrCorruptBlock, r)
		}
	}()
	if j.view, j.err = j.dec.open(j.h, body); j.err != nil {
		return
	}
	j.sel = append(j.sel[:0], make([]bool, j.h.count)...)
	if j.hit, j.err = f.selectRows(j.view, j.sel); j.err != nil || !j.hit {
		return
	}
	if j.err = j.dec.load(j.view, j.sel); j.err != nil || j.h.version < blockVersion4 {
		return
	}
	j.hit, j.err = f.selectSegmentRows(j.view, j.sel)
}

// finish waits for job j and adds its selected rows to the page; full
// reports that the page is complete.
func (s *scan) finish(j *blockJob) (full bool, err error) {
	<-j.done
	if j.err != nil {
		return false, blockError(j.err, j.day, j.seq)
	}
	s.sel = j.sel
	hit := j.hit
	if hit && s.start != nil && s.start.day == j.day && s.start.seq == j.seq {
		hit = s.selectPastCursor()
	}
	if !hit {
		return false, nil
	}
	s.selectPageRows()
	s.recs, err = decodeColumns(j.view, s.resolve, s.recs[:0], s.sel)
	if err != nil {
		return false, blockError(err, j.day, j.seq)
	}
	return s.appendMatches(j.day, j.seq), nil
}

// drain finishes the jobs in flight, in order, once the walk is over,
// until the page is complete.
func (s *scan) drain() error {
	for s.finished < s.started && len(s.page.Records) < s.limit {
		j := &s.jobs[s.finished%len(s.jobs)]
		s.finished++
		if full, err := s.finish(j); err != nil || full {
			return err
		}
	}
	return nil
}

// wait blocks until no job is in flight; Records calls it before its read
// transaction ends.
func (s *scan) wait() {
	for ; s.finished < s.started; s.finished++ {
		<-s.jobs[s.finished%len(s.jobs)].done
	}
}

// selectPastCursor leaves selected, in the cursor's block, only the rows
// past the cursor in the scan's direction, and reports whether any is.
func (s *scan) selectPastCursor() bool {
	newest := s.q.Order == NewestFirst
	hit := false
	for i, ok := range s.sel {
		if (newest && i >= s.start.index) || (!newest && i <= s.start.index) {
			s.sel[i] = false
		} else if ok {
			hit = true
		}
	}
	return hit
}

// selectPageRows leaves selected only as many rows, taken in the scan's
// order, as the page still needs: selectRows applies every filter of the
// query, so no more are worth decoding.
func (s *scan) selectPageRows() {
	newest := s.q.Order == NewestFirst
	wanted := s.limit - len(s.page.Records)
	for j := range s.sel {
		i := j
		if newest {
			i = len(s.sel) - 1 - j
		}
		if s.sel[i] {
			if wanted == 0 {
				s.sel[i] = false
			} else {
				wanted--
			}
		}
	}
}

// appendMatches appends the decoded rows of block seq of a day that match
// the query to the page, in the scan's order. When that fills the page it
// sets the page's Next and reports true.
func (s *scan) appendMatches(day uint32, seq uint64) (full bool) {
	newest := s.q.Order == NewestFirst
	s.rows = s.rows[:0]
	for i, ok := range s.sel {
		if ok {
			s.rows = append(s.rows, i)
		}
	}
	for j := range s.rows {
		if newest {
			j = len(s.rows) - 1 - j
		}
		if !s.f.match(&s.recs[j]) {
			continue
		}
		s.page.Records = append(s.page.Records, s.recs[j])
		if len(s.page.Records) == s.limit {
			s.page.Next = position{order: s.q.Order, day: day, seq: seq, index: s.rows[j]}.encode()
			return true
		}
	}
	return false
}

// ceilMicro is t in µs since the epoch, rounded up, so comparing stored
// µs times against it agrees with comparing the exact times.
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if !t.Truncate(time.Microsecond).Equal(t) {
		us++
	}
	return us
}
