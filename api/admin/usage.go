package admin

import (
	"encoding/csv"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api/httpapi"
)

func (s *Server) keyUsage(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	svc, err := s.analyticsService()
	if err != nil {
		return err
	}
	k, err := s.keys.Get(ps.ByName("id"))
	if err != nil {
		return err
	}
	u, err := svc.KeyUsage(r.Context(), analytics.KeyUsageQuery{KeyID: k.ID, Tier: k.Tier})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, u)
	return nil
}

// billingReport answers GET /admin/v1/analytics/usage: a calendar month's
// requests, errors and bytes per owner or key, as JSON or CSV, exact from
// the rollups.
func (s *Server) billingReport(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	if err := checkParams(q, "month", "group_by", "format"); err != nil {
		return err
	}
	svc, err := s.analyticsService()
	if err != nil {
		return err
	}
	month := first(q, "month")
	if month == "" {
		month = s.now().In(svc.Location()).Format("2006-01")
	}
	format := first(q, "format")
	switch format {
	case "", "json", "csv":
	default:
		return httpapi.Errorf(httpapi.CodeInvalidParameter, "format: must be json or csv, got %q", format)
	}
	bq := analytics.BillingQuery{Month: month, GroupBy: analytics.GroupBy(first(q, "group_by"))}
	if bq.GroupBy == analytics.GroupKey {
		bq.OwnerOf = func(id string) string {
			if k, err := s.keys.Get(id); err == nil {
				return k.OwnerID
			}
			return ""
		}
	}
	rep, err := svc.Billing(r.Context(), bq)
	if err != nil {
		return err
	}
	if format != "csv" {
		httpapi.WriteJSON(w, http.StatusOK, rep)
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `attachment; filename="apiwarden-usage-`+rep.Month+"-by-"+string(rep.GroupBy)+`.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	header := []string{"month", "owner_id"}
	if rep.GroupBy == analytics.GroupKey {
		header = append(header, "key_id")
	}
	header = append(header, "requests", "errors_4xx", "errors_5xx", "rate_limited", "bytes_in", "bytes_out")
	_ = writeCSVRow(cw, header)
	row := make([]string, 0, len(header))
	for _, br := range rep.Rows {
		row = append(row[:0], rep.Month, br.OwnerID)
		if rep.GroupBy == analytics.GroupKey {
			row = append(row, br.KeyID)
		}
		for _, n := range []uint64{br.Requests, br.Errors4xx, br.Errors5xx, br.RateLimited, br.BytesIn, br.BytesOut} {
			row = append(row, strconv.FormatUint(n, 10))
		}
		if err := writeCSVRow(cw, row); err != nil {
			return nil // the client went away
		}
	}
	cw.Flush()
	return nil
}
