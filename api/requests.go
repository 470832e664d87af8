package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
)

// recordJSON is a raw record as /admin/v1/requests and the NDJSON export
// show it (docs/API.md, Record): every field present. Its field names are
// those POST /v1/events reads, so an export can be ingested again.
type recordJSON struct {
	Time              string  `json:"time"`
	RequestID         string  `json:"request_id"`
	Method            string  `json:"method"`
	Route             string  `json:"route"`
	Path              string  `json:"path"`
	Status            int     `json:"status"`
	LatencyMS         float64 `json:"latency_ms"`
	UpstreamLatencyMS float64 `json:"upstream_latency_ms"`
	RequestBytes      int64   `json:"request_bytes"`
	ResponseBytes     int64   `json:"response_bytes"`
	KeyID             string  `json:"key_id"`
	OwnerID           string  `json:"owner_id"`
	Tier              string  `json:"tier"`
	ClientIP          string  `json:"client_ip"`
	Country           string  `json:"country"`
	UserAgent         string  `json:"user_agent"`
	ErrorCategory     string  `json:"error_category"`
	CacheStatus       string  `json:"cache_status"`
	Decision          string  `json:"decision"`
}

func toRecordJSON(r *metrics.Record) recordJSON {
	out := recordJSON{
		Time: r.Time.UTC().Format(time.RFC3339Nano), RequestID: r.RequestID, Method: r.Method, Route: r.Route,
		Path: r.Path, Status: r.Status, LatencyMS: msOf(r.Latency), UpstreamLatencyMS: msOf(r.UpstreamLatency),
		RequestBytes: r.RequestBytes, ResponseBytes: r.ResponseBytes, KeyID: r.KeyID, OwnerID: r.OwnerID,
		Tier: r.Tier, Country: r.Country, UserAgent: r.UserAgent, ErrorCategory: r.ErrorCategory.String(),
		CacheStatus: r.CacheStatus.String(), Decision: string(r.Decision),
	}
	if r.ClientIP.IsValid() {
		out.ClientIP = r.ClientIP.String()
	}
	return out
}

// msOf is d in milliseconds at the microsecond precision records keep.
func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// recordParams are the filters of /admin/v1/requests (and of a raw
// export).
var recordParams = []string{"from", "to", "key_id", "route", "status", "method"}

// recordQuery parses the record filters.
func recordQuery(q map[string][]string) (analytics.RecordQuery, error) {
	var rq analytics.RecordQuery
	var err error
	if rq.From, rq.To, err = rangeParams(q); err != nil {
		return rq, err
	}
	rq.KeyID, rq.Route, rq.Method = first(q, "key_id"), first(q, "route"), first(q, "method")
	if st := first(q, "status"); st != "" {
		// "404" is one status, "4xx" a class.
		if len(st) == 3 && strings.HasSuffix(strings.ToLower(st), "xx") && st[0] >= '1' && st[0] <= '5' {
			rq.StatusClass = int(st[0] - '0')
		} else if n, err := strconv.Atoi(st); err == nil && n >= 100 && n <= 599 {
			rq.Status = n
		} else {
			return rq, errorf(CodeInvalidParameter, "status: must be a status (404) or a class (4xx), got %q", st)
		}
	}
	return rq, nil
}

// requestsAnswer is the answer to GET /admin/v1/requests.
type requestsAnswer struct {
	From       *time.Time   `json:"from"` // null when retention keeps every day
	To         time.Time    `json:"to"`
	Records    []recordJSON `json:"records"`
	NextCursor string       `json:"next_cursor"`
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	if err := checkParams(q, append(recordParams, "cursor", "limit")...); err != nil {
		return err
	}
	svc, err := s.analyticsService()
	if err != nil {
		return err
	}
	rq, err := recordQuery(q)
	if err != nil {
		return err
	}
	if rq.Limit, err = intParam(first(q, "limit"), "limit", metrics.DefaultRecordLimit, 1, metrics.MaxRecordLimit); err != nil {
		return err
	}
	rq.Cursor, rq.Order = first(q, "cursor"), metrics.NewestFirst
	page, err := svc.Records(r.Context(), rq)
	if err != nil {
		return analyticsError(err)
	}
	out := requestsAnswer{To: page.To, Records: make([]recordJSON, len(page.Records)), NextCursor: page.Next}
	if !page.From.IsZero() {
		out.From = &page.From
	}
	for i := range page.Records {
		out.Records[i] = toRecordJSON(&page.Records[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
