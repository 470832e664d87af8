package admin

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api/httpapi"
)

// RealtimeSource gives the realtime answer and the stream's snapshots.
// *analytics.Realtime is one.
type RealtimeSource interface {
	Snapshot(now time.Time, series bool) analytics.Snapshot
}

var _ RealtimeSource = (*analytics.Realtime)(nil)

// AnalyticsOptions wire the analytics routes (/admin/v1/analytics/*,
// /admin/v1/requests, /admin/v1/stream and /admin/v1/keys/{id}/usage).
type AnalyticsOptions struct {
	// Service answers the queries; nil answers 503 on every route that
	// needs it. The same service gives the alert evaluator its history.
	Service *analytics.Service
	// Realtime serves /analytics/realtime and /stream; nil answers 503.
	Realtime RealtimeSource
	// StreamInterval is the time between two stream snapshots (default
	// 1s); HeartbeatInterval between two heartbeat comments (default 15s).
	StreamInterval    time.Duration
	HeartbeatInterval time.Duration
}

// analyticsAPI is the analytics routes' state.
type analyticsAPI struct {
	svc      *analytics.Service // nil: 503
	realtime RealtimeSource
	hub      *streamHub // nil without Realtime
	beat     time.Duration
}

func newAnalyticsAPI(opts AnalyticsOptions, now func() time.Time, log *slog.Logger) *analyticsAPI {
	a := &analyticsAPI{svc: opts.Service, realtime: opts.Realtime, beat: opts.HeartbeatInterval}
	if a.beat <= 0 {
		a.beat = 15 * time.Second
	}
	if opts.Realtime != nil {
		a.hub = newStreamHub(opts.Realtime, opts.StreamInterval, now, log)
	}
	return a
}

// analyticsRoutes are the analytics entries of the admin route table.
func (s *Server) analyticsRoutes() []httpapi.Route {
	return []httpapi.Route{
		{Method: "GET", Path: "/admin/v1/keys/:id/usage", Summary: "a key's live limits and usage", Access: httpapi.AccessAdmin, Handle: s.keyUsage},
		{Method: "GET", Path: "/admin/v1/analytics/realtime", Summary: "the last minutes from memory", Access: httpapi.AccessAdmin, Handle: s.realtimeAnalytics},
		{Method: "GET", Path: "/admin/v1/analytics/summary", Summary: "totals of the period in progress against the previous one", Access: httpapi.AccessAdmin, Handle: s.summaryAnalytics},
		{Method: "GET", Path: "/admin/v1/analytics/timeseries", Summary: "a time series, optionally grouped", Access: httpapi.AccessAdmin, Handle: s.timeseriesAnalytics},
		{Method: "GET", Path: "/admin/v1/analytics/top", Summary: "routes, keys, owners or tiers ranked by a metric", Access: httpapi.AccessAdmin, Handle: s.topAnalytics},
		{Method: "GET", Path: "/admin/v1/analytics/export", Summary: "raw records or a time series as CSV or NDJSON, streamed", Access: httpapi.AccessAdmin, Handle: s.exportAnalytics},
		{Method: "GET", Path: "/admin/v1/analytics/usage", Summary: "billing report: a calendar month's usage per owner or key", Access: httpapi.AccessAdmin, Handle: s.billingReport},
		{Method: "GET", Path: "/admin/v1/requests", Summary: "raw request records, newest first", Access: httpapi.AccessAdmin, Handle: s.listRequests},
		{Method: "GET", Path: "/admin/v1/stream", Summary: "server-sent events: a realtime snapshot every second", Access: httpapi.AccessAdmin, Handle: s.stream},
	}
}

// service returns the analytics service or a 503.
func (s *Server) analyticsService() (*analytics.Service, error) {
	if s.analytics.svc == nil {
		return nil, httpapi.Errorf(httpapi.CodeUnavailable, "analytics are not enabled on this server (no metrics store)")
	}
	return s.analytics.svc, nil
}

// timeParam parses an optional from/to: RFC 3339 or Unix seconds.
// rangeParams reads from and to, either of which may be absent, and
// checks that a range given in full is not empty.
func rangeParams(q map[string][]string) (from, to time.Time, err error) {
	if from, err = timeParam(q, "from"); err != nil {
		return
	}
	if to, err = timeParam(q, "to"); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		err = httpapi.Errorf(httpapi.CodeInvalidParameter, "from: must be before to")
	}
	return
}

func timeParam(q map[string][]string, name string) (time.Time, error) {
	v := first(q, name)
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > 1<<40 {
			return time.Time{}, httpapi.Errorf(httpapi.CodeInvalidParameter, "%s: Unix seconds out of range: %q", name, v)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, httpapi.Errorf(httpapi.CodeInvalidParameter, "%s: must be RFC 3339 (2026-11-27T21:00:00Z) or Unix seconds, got %q", name, v)
	}
	return t, nil
}

// tzParam parses an optional IANA time zone; empty is def.
func tzParam(q map[string][]string, def *time.Location) (*time.Location, error) {
	v := first(q, "tz")
	if v == "" {
		return def, nil
	}
	if v == "Local" || strings.ContainsAny(v, `\`) {
		return nil, httpapi.Errorf(httpapi.CodeInvalidParameter, "tz: must be an IANA time zone such as Europe/Berlin or UTC, got %q", v)
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, httpapi.Errorf(httpapi.CodeInvalidParameter, "tz: must be an IANA time zone such as Europe/Berlin or UTC, got %q", v)
	}
	return loc, nil
}

// first returns a parameter's value, "" when absent.
func first(q map[string][]string, name string) string {
	if v := q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// singleParams refuses a parameter given twice, which would otherwise be
// half ignored.
func singleParams(q map[string][]string) error {
	for name, v := range q {
		if len(v) > 1 {
			return httpapi.Errorf(httpapi.CodeInvalidParameter, "%s: give it once, got %d values", name, len(v))
		}
	}
	return nil
}

func checkParams(q map[string][]string, known ...string) error {
	if err := onlyParams(q, known...); err != nil {
		return err
	}
	return singleParams(q)
}

func (s *Server) realtimeAnalytics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := checkParams(r.URL.Query()); err != nil {
		return err
	}
	if s.analytics == nil || s.analytics.realtime == nil {
		return httpapi.Errorf(httpapi.CodeUnavailable, "realtime analytics are not enabled on this server")
	}
	httpapi.WriteJSON(w, http.StatusOK, s.analytics.realtime.Snapshot(s.now(), true))
	return nil
}

func (s *Server) summaryAnalytics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	if err := checkParams(q, "period", "tz"); err != nil {
		return err
	}
	svc, err := s.analyticsService()
	if err != nil {
		return err
	}
	period := analytics.PeriodDay
	if v := first(q, "period"); v != "" {
		if period, err = analytics.ParsePeriod(v); err != nil {
			return err
		}
	}
	loc, err := tzParam(q, svc.Location())
	if err != nil {
		return err
	}
	sum, err := svc.Summary(r.Context(), analytics.SummaryQuery{Period: period, Location: loc})
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, sum)
	return nil
}

// seriesParams are the parameters of a time series (timeseries and the
// series form of export).
var seriesParams = []string{"from", "to", "interval", "tz", "group_by", "route", "key_id", "owner_id", "tier"}

// seriesQuery parses a time series' parameters.
func seriesQuery(q map[string][]string, defLoc *time.Location) (analytics.SeriesQuery, error) {
	var sq analytics.SeriesQuery
	var err error
	if sq.From, sq.To, err = rangeParams(q); err != nil {
		return sq, err
	}
	sq.Interval = analytics.IntervalHour
	if v := first(q, "interval"); v != "" {
		if sq.Interval, err = analytics.ParseInterval(v); err != nil {
			return sq, err
		}
	}
	if sq.GroupBy, err = analytics.ParseGroupBy(first(q, "group_by")); err != nil {
		return sq, err
	}
	if sq.Location, err = tzParam(q, defLoc); err != nil {
		return sq, err
	}
	sq.Filter = analytics.Filter{Route: first(q, "route"), KeyID: first(q, "key_id"), OwnerID: first(q, "owner_id"), Tier: first(q, "tier")}
	return sq, nil
}

func (s *Server) timeseriesAnalytics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	if err := checkParams(q, seriesParams...); err != nil {
		return err
	}
	svc, err := s.analyticsService()
	if err != nil {
		return err
	}
	sq, err := seriesQuery(q, svc.Location())
	if err != nil {
		return err
	}
	res, err := svc.Series(r.Context(), sq)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) topAnalytics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	if err := checkParams(q, "by", "metric", "period", "from", "to", "tz", "limit"); err != nil {
		return err
	}
	svc, err := s.analyticsService()
	if err != nil {
		return err
	}
	tq := analytics.TopQuery{By: analytics.GroupRoute, Metric: analytics.MetricRequests}
	if v := first(q, "by"); v != "" {
		tq.By = analytics.GroupBy(v)
		if g := tq.By; g != analytics.GroupRoute && g != analytics.GroupKey && g != analytics.GroupOwner && g != analytics.GroupTier {
			return httpapi.Errorf(httpapi.CodeInvalidParameter, "by: must be route, key, owner or tier, got %q", v)
		}
	}
	if v := first(q, "metric"); v != "" {
		if tq.Metric, err = analytics.ParseMetric(v); err != nil {
			return err
		}
	}
	if v := first(q, "period"); v != "" {
		if tq.Period, err = analytics.ParsePeriod(v); err != nil {
			return err
		}
	}
	if tq.From, tq.To, err = rangeParams(q); err != nil {
		return err
	}
	if tq.Period != "" && (!tq.From.IsZero() || !tq.To.IsZero()) {
		return httpapi.Errorf(httpapi.CodeInvalidParameter, "period: give either period or from/to, not both")
	}
	if tq.Location, err = tzParam(q, svc.Location()); err != nil {
		return err
	}
	if tq.Limit, err = intParam(first(q, "limit"), "limit", analytics.DefaultTopLimit, 1, analytics.MaxTopLimit); err != nil {
		return err
	}
	res, err := svc.Top(r.Context(), tq)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
	return nil
}
