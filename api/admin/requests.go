package admin

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/metrics"
)

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
			return rq, httpapi.Errorf(httpapi.CodeInvalidParameter, "status: must be a status (404) or a class (4xx), got %q", st)
		}
	}
	return rq, nil
}

// requestsAnswer is the answer to GET /admin/v1/requests.
type requestsAnswer struct {
	From       *time.Time           `json:"from"` // null when retention keeps every day
	To         time.Time            `json:"to"`
	Records    []metrics.RecordJSON `json:"records"`
	NextCursor string               `json:"next_cursor"`
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
		return err
	}
	out := requestsAnswer{To: page.To, Records: make([]metrics.RecordJSON, len(page.Records)), NextCursor: page.Next}
	if !page.From.IsZero() {
		out.From = &page.From
	}
	for i := range page.Records {
		out.Records[i] = page.Records[i].JSON()
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
