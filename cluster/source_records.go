package cluster

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/metrics"
)

// recordPosition is where a record stands in the order every page of
// apiwarden_records follows (cluster/migrations/009_record_positions.up.sql):
// its UTC day, its instance, its block's sequence in that instance's data
// file and its index in the block. For one instance that is the bbolt
// reader's order (metrics.Order); the instances of one day follow one
// another by id. A record's position never changes and names no other
// record, so a page that resumes after one neither repeats nor skips a
// record that existed when the scan began, however late (and out of time
// order) other instances ship theirs.
type recordPosition struct {
	day      int32
	instance string
	seq      int64
	idx      int32
}

// recordCursorVersion is the first byte of a cursor the PostgreSQL reader
// issues; the bbolt reader's cursors start with 1, so neither takes the
// other's.
const recordCursorVersion = 0x50

func (p recordPosition) encode(order metrics.Order) string {
	b := []byte{recordCursorVersion, byte(order)}
	b = binary.BigEndian.AppendUint32(b, uint32(p.day))
	b = binary.BigEndian.AppendUint64(b, uint64(p.seq))
	b = binary.BigEndian.AppendUint32(b, uint32(p.idx))
	b = append(b, p.instance...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeRecordCursor reads a cursor encode made for order; anything else
// is metrics.ErrBadCursor.
func decodeRecordCursor(s string, order metrics.Order) (recordPosition, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 18 || b[0] != recordCursorVersion || metrics.Order(b[1]) != order {
		return recordPosition{}, metrics.ErrBadCursor
	}
	return recordPosition{
		day:      int32(binary.BigEndian.Uint32(b[2:])),
		seq:      int64(binary.BigEndian.Uint64(b[6:])),
		idx:      int32(binary.BigEndian.Uint32(b[14:])),
		instance: string(b[18:]),
	}, nil
}

// recordSelect is the columns a page reads: those of metrics.Record, then
// the record's position.
const recordSelect = `SELECT at, request_id, method, route, path, status, latency_us, upstream_latency_us,
	request_bytes, response_bytes, key_id, owner_id, tier, client_ip, country, user_agent,
	error_category, cache_status, decision, day, instance_id, seq, idx FROM apiwarden_records`

// Records returns one page of the records of every instance that q
// selects, in q.Order, with the filters of metrics.Reader.Records (times
// compared at the microsecond both stores keep). Pass the page's Next
// as q.Cursor with the same query for the next page; a full page always
// has one. It returns metrics.ErrBadCursor for a cursor it did not issue
// for this order, metrics.ErrBadQuery for an empty time range or an
// unknown order, and an error wrapping keys.ErrUnavailable when
// PostgreSQL cannot answer.
//
// A page that starts in a day with enough records is read from the two
// days where it starts alone (the window): a statement over every day's
// partition opens an index scan in each of them. When the window does
// not fill the page, the page is read again over the whole range; each
// page is one statement's snapshot either way.
func (s *Source) Records(ctx context.Context, q metrics.RecordQuery) (metrics.RecordPage, error) {
	if q.Order != metrics.NewestFirst && q.Order != metrics.OldestFirst {
		return metrics.RecordPage{}, fmt.Errorf("%w: order %d", metrics.ErrBadQuery, q.Order)
	}
	if !q.To.IsZero() && !q.To.After(q.From) {
		return metrics.RecordPage{}, fmt.Errorf("%w: to (%s) must be after from (%s)", metrics.ErrBadQuery, q.To, q.From)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = metrics.DefaultRecordLimit
	}
	limit = min(limit, metrics.MaxRecordLimit)
	var after *recordPosition
	if q.Cursor != "" {
		p, err := decodeRecordCursor(q.Cursor, q.Order)
		if err != nil {
			return metrics.RecordPage{}, err
		}
		after = &p
	}
	if w, ok := pageWindow(&q, after, s.now()); ok {
		page, err := s.page(ctx, &q, after, limit, w)
		if err != nil || len(page.Records) == limit {
			return page, err
		}
	}
	return s.page(ctx, &q, after, limit, timeWindow{})
}

// timeWindow narrows a page's statement to [from, to) (zero: no bound).
type timeWindow struct{ from, to time.Time }

// pageWindow is the two UTC days where a page of q starts: the cursor's
// day, else today newest first and From's day oldest first, with the day
// before (newest first) or after. ok is false when the window would not
// narrow q, or oldest first without a start.
func pageWindow(q *metrics.RecordQuery, after *recordPosition, now time.Time) (timeWindow, bool) {
	var anchor time.Time
	switch {
	case after != nil:
		anchor = time.Unix(int64(after.day)*24*60*60, 0).UTC()
	case q.Order == metrics.NewestFirst:
		anchor = metrics.Daily.Truncate(now)
	case !q.From.IsZero():
		anchor = metrics.Daily.Truncate(q.From)
	default:
		return timeWindow{}, false
	}
	if q.Order == metrics.NewestFirst {
		from := anchor.AddDate(0, 0, -1)
		return timeWindow{from: from}, q.From.IsZero() || q.From.Before(from)
	}
	to := anchor.AddDate(0, 0, 2)
	return timeWindow{to: to}, q.To.IsZero() || q.To.After(to)
}

// page reads one page of q within w in one statement.
func (s *Source) page(ctx context.Context, q *metrics.RecordQuery, after *recordPosition, limit int, w timeWindow) (metrics.RecordPage, error) {
	var page metrics.RecordPage
	sql, args := recordsSQL(q, after, limit, w)
	qctx, cancel, err := s.begin(ctx)
	if err != nil {
		return page, err
	}
	defer cancel()
	rows, err := s.pool.Query(qctx, sql, args...)
	if err != nil {
		return page, readError(ctx, err)
	}
	defer rows.Close()
	var last recordPosition
	for rows.Next() {
		var rec metrics.Record
		if last, err = scanRecord(rows, &rec); err != nil {
			return metrics.RecordPage{}, readError(ctx, err)
		}
		page.Records = append(page.Records, rec)
	}
	if err := rows.Err(); err != nil {
		return metrics.RecordPage{}, readError(ctx, err)
	}
	if len(page.Records) == limit {
		page.Next = last.encode(q.Order)
	}
	return page, nil
}

// recordsSQL builds the statement of one page: q's filters, the window,
// the position to resume after and the order, as numbered arguments.
func recordsSQL(q *metrics.RecordQuery, after *recordPosition, limit int, w timeWindow) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	// The day bounds repeat the time bounds so each partition's index
	// range starts and ends at them; the time bounds prune partitions.
	if !q.From.IsZero() {
		from := ceilMicro(q.From)
		where = append(where, "at >= "+arg(from), "day >= "+arg(recordDay(from)))
	}
	if !q.To.IsZero() {
		to := ceilMicro(q.To)
		where = append(where, "at < "+arg(to), "day <= "+arg(recordDay(to.Add(-time.Microsecond))))
	}
	if !w.from.IsZero() {
		where = append(where, "at >= "+arg(w.from))
	}
	if !w.to.IsZero() {
		where = append(where, "at < "+arg(w.to))
	}
	for _, f := range []struct{ col, v string }{{"key_id", q.KeyID}, {"route", q.Route}, {"method", q.Method}} {
		if f.v != "" {
			where = append(where, f.col+" = "+arg(f.v))
		}
	}
	if q.Status != 0 {
		where = append(where, "status = "+arg(int32(q.Status)))
	}
	if q.StatusClass != 0 {
		where = append(where, fmt.Sprintf("status BETWEEN %d AND %d", q.StatusClass*100, q.StatusClass*100+99))
	}
	cmp, dir := ">", "ASC"
	if q.Order == metrics.NewestFirst {
		cmp, dir = "<", "DESC"
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(day, instance_id, seq, idx) %s (%s, %s, %s, %s)",
			cmp, arg(after.day), arg(after.instance), arg(after.seq), arg(after.idx)))
	}
	var sql strings.Builder
	sql.WriteString(recordSelect)
	if len(where) > 0 {
		sql.WriteString(" WHERE ")
		sql.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&sql, " ORDER BY day %[1]s, instance_id %[1]s, seq %[1]s, idx %[1]s LIMIT %d", dir, limit)
	return sql.String(), args
}

// rowScanner is the part of pgx.Rows scanRecord needs.
type rowScanner interface{ Scan(dest ...any) error }

// scanRecord reads one row of recordSelect into rec and returns its
// position. Names of enums this binary does not know read as their zero
// values, as the bbolt reader does with out-of-range ones.
func scanRecord(row rowScanner, rec *metrics.Record) (recordPosition, error) {
	var (
		p                        recordPosition
		status                   int32
		latency, upstream        int64
		ip                       *netip.Prefix
		category, cache, decided string
	)
	err := row.Scan(&rec.Time, &rec.RequestID, &rec.Method, &rec.Route, &rec.Path, &status, &latency, &upstream,
		&rec.RequestBytes, &rec.ResponseBytes, &rec.KeyID, &rec.OwnerID, &rec.Tier, &ip, &rec.Country, &rec.UserAgent,
		&category, &cache, &decided, &p.day, &p.instance, &p.seq, &p.idx)
	if err != nil {
		return p, err
	}
	rec.Time = rec.Time.UTC()
	rec.Status = int(status)
	rec.Latency = time.Duration(latency) * time.Microsecond
	rec.UpstreamLatency = time.Duration(upstream) * time.Microsecond
	if ip != nil {
		rec.ClientIP = ip.Addr()
	}
	rec.ErrorCategory, _ = metrics.ParseErrorCategory(category)
	rec.CacheStatus = metrics.ParseCacheStatus(cache)
	rec.Decision, _ = decision.Parse(decided)
	return p, nil
}

// ceilMicro is t rounded up to the microsecond, so comparing the stored
// µs times against it agrees with comparing the exact times (as the bbolt
// reader does).
func ceilMicro(t time.Time) time.Time {
	if u := t.Truncate(time.Microsecond); !u.Equal(t) {
		return u.Add(time.Microsecond)
	}
	return t
}
