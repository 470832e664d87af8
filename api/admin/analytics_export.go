package admin

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/metrics"
)

// Export streaming: rows go through a buffer to the client and are
// flushed every exportFlushRows rows (and at the end of every series
// group); each flush pushes the write deadline exportWriteTimeout ahead,
// so a long export outlives the server's WriteTimeout while a stalled
// client is still cut off.
const (
	exportFlushRows    = 1000
	exportWriteTimeout = 30 * time.Second
)

// recordColumns are the CSV columns of a raw export, in docs/API.md's
// Record order.
var recordColumns = []string{"time", "request_id", "method", "route", "path", "status", "latency_ms",
	"upstream_latency_ms", "request_bytes", "response_bytes", "key_id", "owner_id", "tier", "client_ip",
	"country", "user_agent", "error_category", "cache_status", "decision"}

// seriesColumns are the CSV columns of a time series export.
var seriesColumns = []string{"group", "t", "requests", "errors_4xx", "errors_5xx", "error_rate", "rate_limited",
	"auth_failures", "bytes_in", "bytes_out", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "avg_ms"}

// exportAnalytics streams raw records, or with interval= a time series,
// as CSV or NDJSON, row by row: nothing is built in memory and nothing
// holds the store open while the client reads.
func (s *Server) exportAnalytics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	// Everything that can be refused is checked before the 200 goes out.
	ex, err := s.planExport(r.URL.Query())
	if err != nil {
		return err
	}
	ew := newExportWriter(w, ex.format)
	h := w.Header()
	h.Set("Content-Type", ew.contentType())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `attachment; filename="`+ex.filename()+`"`)
	h.Set("X-Apiwarden-From", formatOrEmpty(ex.from))
	h.Set("X-Apiwarden-To", ex.to.Format(time.RFC3339))
	// The 200 goes out with the first bytes flushed, not here, so a
	// source that fails before any row (PostgreSQL unreachable in cluster
	// mode) still gets its error status.
	err = ex.stream(r.Context(), ew)
	if err != nil && !ew.sent {
		for _, name := range []string{"Content-Type", "Content-Disposition", "X-Apiwarden-From", "X-Apiwarden-To"} {
			h.Del(name)
		}
		return err
	}
	if err != nil && r.Context().Err() == nil && !errors.Is(err, errClientGone) {
		// The 200 is out: the only way left to say the export is cut
		// short is to end the connection without the final chunk.
		s.log.Error("export failed mid-stream", "request_id", httpapi.RequestIDFrom(r.Context()), "err", err)
		ew.abort()
	}
	return nil
}

// export is an export checked and planned, ready to stream: a series
// (plan) or raw records (records), and the range it covers.
type export struct {
	svc      *analytics.Service
	format   string // csv or ndjson
	plan     *analytics.SeriesPlan
	records  analytics.RecordQuery
	from, to time.Time
}

// planExport checks an export's query q and plans it, or returns the
// error the client is answered.
func (s *Server) planExport(q url.Values) (*export, error) {
	_, asSeries := q["interval"]
	known := append([]string{"format"}, recordParams...)
	if asSeries {
		known = append([]string{"format"}, seriesParams...)
	}
	if err := checkParams(q, known...); err != nil {
		return nil, err
	}
	svc, err := s.analyticsService()
	if err != nil {
		return nil, err
	}
	ex := &export{svc: svc, format: first(q, "format")}
	switch ex.format {
	case "":
		ex.format = "csv"
	case "csv", "ndjson":
	default:
		return nil, httpapi.Errorf(httpapi.CodeInvalidParameter, "format: must be csv or ndjson, got %q", ex.format)
	}
	if asSeries {
		sq, err := seriesQuery(q, svc.Location())
		if err != nil {
			return nil, err
		}
		if ex.plan, err = svc.PlanSeries(sq); err != nil {
			return nil, err
		}
		ex.from, ex.to = ex.plan.From, ex.plan.To
		return ex, nil
	}
	if ex.records, err = recordQuery(q); err != nil {
		return nil, err
	}
	ex.records.Order = metrics.OldestFirst
	if ex.from, ex.to, err = svc.RecordRange(ex.records); err != nil {
		return nil, err
	}
	return ex, nil
}

// filename is the export's attachment name: its kind, its range, its
// format.
func (ex *export) filename() string {
	kind := "requests"
	if ex.plan != nil {
		kind = "timeseries"
	}
	name := "apiwarden-" + kind
	if !ex.from.IsZero() {
		name += "-" + ex.from.Format("20060102T150405Z")
	}
	return name + "-" + ex.to.Format("20060102T150405Z") + "." + ex.format
}

// stream writes the export's header row and rows to ew, flushing at the
// end of every series group and at the end.
func (ex *export) stream(ctx context.Context, ew *exportWriter) error {
	var err error
	if ex.plan != nil {
		ew.header(seriesColumns)
		err = ex.plan.Each(ctx, func(group string, points []analytics.Point) error {
			for i := range points {
				if err := ew.seriesRow(group, &points[i]); err != nil {
					return err
				}
			}
			return ew.flush()
		})
	} else {
		ew.header(recordColumns)
		err = ex.svc.EachRecord(ctx, ex.records, ew.recordRow)
	}
	if err != nil {
		return err
	}
	return ew.flush()
}

func formatOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// errClientGone marks a write that failed because the client is gone.
var errClientGone = errors.New("api: client went away")

// exportWriter writes rows as CSV or NDJSON through a buffer and flushes
// to the client as it goes.
type exportWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	buf     *bufio.Writer
	csv     *csv.Writer // nil for NDJSON
	json    *json.Encoder
	row     []string
	pending int
	err     error
	sent    bool // the status and some bytes have gone to the client
}

func newExportWriter(w http.ResponseWriter, format string) *exportWriter {
	ew := &exportWriter{w: w, rc: http.NewResponseController(w)}
	ew.buf = bufio.NewWriterSize(errWriter{ew}, 64<<10)
	if format == "csv" {
		ew.csv = csv.NewWriter(ew.buf)
	} else {
		ew.json = json.NewEncoder(ew.buf)
		ew.json.SetEscapeHTML(false)
	}
	_ = ew.rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	return ew
}

// errWriter notes the first write error to the client.
type errWriter struct{ ew *exportWriter }

func (e errWriter) Write(p []byte) (int, error) {
	e.ew.sent = true
	n, err := e.ew.w.Write(p)
	if err != nil && e.ew.err == nil {
		e.ew.err = errClientGone
	}
	return n, err
}

func (ew *exportWriter) contentType() string {
	if ew.csv != nil {
		return "text/csv; charset=utf-8"
	}
	return "application/x-ndjson"
}

func (ew *exportWriter) header(cols []string) {
	if ew.csv != nil {
		ew.row = append(ew.row[:0], cols...)
		_ = writeCSVRow(ew.csv, ew.row)
	}
}

// writeCSVRow writes row with every cell defused by csvText, in place:
// clients choose paths, user agents, request ids and methods ("-2+3" is
// a valid one), and exports are opened in spreadsheets. Defusing every
// cell, not the columns thought to hold client text, keeps a new column
// safe too.
func writeCSVRow(w *csv.Writer, row []string) error {
	for i, cell := range row {
		row[i] = csvText(cell)
	}
	return w.Write(row)
}

// csvText defuses a cell a spreadsheet would run as a formula (=, +, -,
// @, tab, carriage return first) with a leading apostrophe, as OWASP
// recommends. The numbers an export writes are never negative, so no
// number is turned into text.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (ew *exportWriter) recordRow(rec *metrics.Record) error {
	if ew.csv == nil {
		_ = ew.json.Encode(rec.JSON())
		return ew.rowDone()
	}
	j := rec.JSON()
	ew.row = append(ew.row[:0], j.Time, j.RequestID, j.Method, j.Route, j.Path, strconv.Itoa(j.Status),
		fmtFloat(j.LatencyMS), fmtFloat(j.UpstreamLatencyMS), strconv.FormatInt(j.RequestBytes, 10),
		strconv.FormatInt(j.ResponseBytes, 10), j.KeyID, j.OwnerID, j.Tier, j.ClientIP,
		j.Country, j.UserAgent, j.ErrorCategory, j.CacheStatus, j.Decision)
	_ = writeCSVRow(ew.csv, ew.row)
	return ew.rowDone()
}

// seriesLine is one NDJSON line of a time series export.
type seriesLine struct {
	Group string `json:"group"`
	analytics.Point
}

func (ew *exportWriter) seriesRow(group string, p *analytics.Point) error {
	if ew.csv == nil {
		_ = ew.json.Encode(seriesLine{Group: group, Point: *p})
		return ew.rowDone()
	}
	st := &p.Stats
	ew.row = append(ew.row[:0], group, p.T.Format(time.RFC3339),
		strconv.FormatUint(st.Requests, 10), strconv.FormatUint(st.Errors4xx, 10), strconv.FormatUint(st.Errors5xx, 10),
		fmtFloat(st.ErrorRate), strconv.FormatUint(st.RateLimited, 10), strconv.FormatUint(st.AuthFailures, 10),
		strconv.FormatUint(st.BytesIn, 10), strconv.FormatUint(st.BytesOut, 10),
		fmtFloat(st.P50MS), fmtFloat(st.P90MS), fmtFloat(st.P95MS), fmtFloat(st.P99MS), fmtFloat(st.MaxMS), fmtFloat(st.AvgMS))
	_ = writeCSVRow(ew.csv, ew.row)
	return ew.rowDone()
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func (ew *exportWriter) rowDone() error {
	if ew.err != nil {
		return ew.err
	}
	if ew.pending++; ew.pending >= exportFlushRows {
		return ew.flush()
	}
	return nil
}

// flush sends what is buffered to the client now.
func (ew *exportWriter) flush() error {
	ew.pending = 0
	if ew.csv != nil {
		ew.csv.Flush()
	}
	_ = ew.buf.Flush()
	if ew.err != nil {
		return ew.err
	}
	_ = ew.rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout))
	ew.sent = true // Flush sends the status even with nothing buffered
	if err := ew.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return errClientGone
	}
	return nil
}

// abort ends the connection so the client sees a truncated body rather
// than a complete-looking file.
func (ew *exportWriter) abort() {
	if conn, _, err := ew.rc.Hijack(); err == nil {
		conn.Close()
	}
}
