package analytics

import (
	"context"
	"errors"
	"time"

	"github.com/apiwarden/apiwarden/metrics"
)

// RecordQuery selects raw records; see metrics.RecordQuery, whose fields
// these are. From is clipped to raw retention.
type RecordQuery struct {
	From, To    time.Time // [From, To); zero From is the oldest kept, zero To is now
	KeyID       string
	Route       string
	Method      string
	Status      int // exact status when non-zero
	StatusClass int // 1 … 5 when non-zero
	Order       metrics.Order
	Limit       int    // 0 means metrics.DefaultRecordLimit, at most metrics.MaxRecordLimit
	Cursor      string // RecordPage.Next of the previous page
}

// RecordPage is one page of raw records (docs/API.md, requests).
type RecordPage struct {
	// From and To are the range the query covers after clipping; a zero
	// From means retention keeps every day.
	From, To time.Time
	Records  []metrics.Record
	// Next is the cursor of the next page, "" at the end. A cursor is
	// a position among the stored blocks, which never move, so pages
	// neither repeat nor skip records however much is written meanwhile.
	Next string
}

func (s *Service) recordQuery(q RecordQuery, now time.Time) (metrics.RecordQuery, time.Time, time.Time, error) {
	from, to := q.From, q.To
	if cut := s.EarliestRaw(now); !cut.IsZero() && from.Before(cut) {
		from = cut
	}
	shownTo := to
	if shownTo.IsZero() {
		shownTo = now
	}
	if !to.IsZero() && !to.After(from) {
		return metrics.RecordQuery{}, from, shownTo, paramErrorf("from", "must be before to, and to after the oldest raw record retention keeps (%s)", from.UTC().Format(time.RFC3339))
	}
	if q.Limit < 0 || q.Limit > metrics.MaxRecordLimit {
		return metrics.RecordQuery{}, from, shownTo, paramErrorf("limit", "must be from 1 to %d, got %d", metrics.MaxRecordLimit, q.Limit)
	}
	if q.StatusClass < 0 || q.StatusClass > 5 {
		return metrics.RecordQuery{}, from, shownTo, paramErrorf("status", "class must be 1xx to 5xx")
	}
	mq := metrics.RecordQuery{From: from, To: to, KeyID: q.KeyID, Route: q.Route, Method: q.Method,
		Status: q.Status, StatusClass: q.StatusClass, Order: q.Order, Limit: q.Limit, Cursor: q.Cursor}
	return mq, from, shownTo, nil
}

// Records returns one page of raw records. It returns a *ParamError for a
// cursor it did not issue (or issued for the other order) and for an empty
// range, or the Source's error.
func (s *Service) Records(ctx context.Context, q RecordQuery) (RecordPage, error) {
	mq, from, to, err := s.recordQuery(q, s.now())
	if err != nil {
		return RecordPage{}, err
	}
	page, err := s.src.Records(ctx, mq)
	if err != nil {
		return RecordPage{}, recordError(err)
	}
	if page.Records == nil {
		page.Records = []metrics.Record{}
	}
	return RecordPage{From: from.UTC(), To: to.UTC(), Records: page.Records, Next: page.Next}, nil
}

// PageSize is how many raw records EachRecord reads per transaction.
const PageSize = 1000

// EachRecord calls fn for every record q selects, in q.Order, reading
// PageSize records per read transaction, so fn may write to a slow client
// without holding the store open and without the records in memory. q.Limit
// is ignored; q.Cursor, if set, is where it starts. fn must not keep rec.
// It returns the first error fn returns, ctx.Err(), or errors as Records.
func (s *Service) EachRecord(ctx context.Context, q RecordQuery, fn func(rec *metrics.Record) error) error {
	q.Limit = 0
	mq, _, _, err := s.recordQuery(q, s.now())
	if err != nil {
		return err
	}
	mq.Limit = PageSize
	for {
		page, err := s.src.Records(ctx, mq)
		if err != nil {
			return recordError(err)
		}
		for i := range page.Records {
			if err := fn(&page.Records[i]); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		mq.Cursor = page.Next
	}
}

// RecordRange returns the range q covers after clipping, without reading.
func (s *Service) RecordRange(q RecordQuery) (from, to time.Time, err error) {
	_, from, to, err = s.recordQuery(q, s.now())
	return from.UTC(), to.UTC(), err
}

func recordError(err error) error {
	switch {
	case errors.Is(err, metrics.ErrBadCursor):
		return paramErrorf("cursor", "not a cursor this query issued; start again without one")
	case errors.Is(err, metrics.ErrBadQuery):
		return paramErrorf("from", "%v", err)
	}
	return err
}
