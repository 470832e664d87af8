package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/netip"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/decision"
)

// Ingest limits.
const (
	// MaxEventsPerBatch is the most records one POST /v1/events body may
	// hold (SPEC §5); more is ErrTooManyEvents.
	MaxEventsPerBatch = 10000
	// MaxEventLineBytes bounds one NDJSON line; a longer line is rejected
	// on its own.
	MaxEventLineBytes = 64 << 10
	// MaxEventFuture is how far past the server's clock an event's time
	// may be, for clocks that drift.
	MaxEventFuture = time.Hour
	// maxEventLatencyMS bounds latency_ms and upstream_latency_ms: a day.
	maxEventLatencyMS = 24 * 60 * 60 * 1000
)

// earliestEventTime rejects times that are surely mistakes (a zero or
// Unix-seconds-as-milliseconds timestamp).
var earliestEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// EventError is the problem with one record of a batch. The API returns a
// list of them next to the accepted count.
type EventError struct {
	// Index is the record's 0-based position in the batch: the array
	// element, or the count of non-blank NDJSON lines before it.
	Index int `json:"index"`
	// Line is the 1-based NDJSON line number; 0 (left out) for arrays.
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// EventBatch is what ParseEvents accepted and rejected.
type EventBatch struct {
	Records []Record
	Errors  []EventError
}

// eventJSON is the wire form of a Record for POST /v1/events and for
// exports. Unknown fields are an error for that record.
//
//	time                 RFC 3339 with optional fraction, required; not before
//	                     2000 and at most MaxEventFuture after the server's clock
//	request_id           up to 128 bytes, kept exactly
//	method               required, an HTTP token up to 32 bytes ("GET")
//	route                the matched pattern, up to 256 bytes
//	path                 path and query; cut to MaxPathBytes, api_key removed
//	status               required, 100–599
//	latency_ms           float milliseconds ≥ 0 (µs precision), at most a day
//	upstream_latency_ms  as latency_ms
//	request_bytes        integer ≥ 0
//	response_bytes       integer ≥ 0
//	key_id, owner_id, tier  up to 128 bytes each
//	client_ip            IPv4 or IPv6 address
//	country              two letters or digits (ISO 3166 alpha-2), upper-cased
//	user_agent           cut to MaxUserAgentBytes
//	error_category       none|client|auth|rate_limited|upstream_5xx|
//	                     upstream_timeout|upstream_unreachable; derived from
//	                     status and decision when left out (CategorizeError)
//	cache_status         hit|miss|stale|bypass, or a raw Cache-Status/X-Cache
//	                     value to normalise (ParseCacheStatus)
//	decision             a SPEC §5 decision code (VALID, RATE_LIMITED, …)
type eventJSON struct {
	Time              *string  `json:"time"`
	RequestID         string   `json:"request_id,omitempty"`
	Method            string   `json:"method"`
	Route             string   `json:"route,omitempty"`
	Path              string   `json:"path,omitempty"`
	Status            int      `json:"status"`
	LatencyMS         *float64 `json:"latency_ms,omitempty"`
	UpstreamLatencyMS *float64 `json:"upstream_latency_ms,omitempty"`
	RequestBytes      int64    `json:"request_bytes,omitempty"`
	ResponseBytes     int64    `json:"response_bytes,omitempty"`
	KeyID             string   `json:"key_id,omitempty"`
	OwnerID           string   `json:"owner_id,omitempty"`
	Tier              string   `json:"tier,omitempty"`
	ClientIP          string   `json:"client_ip,omitempty"`
	Country           string   `json:"country,omitempty"`
	UserAgent         string   `json:"user_agent,omitempty"`
	ErrorCategory     string   `json:"error_category,omitempty"`
	CacheStatus       string   `json:"cache_status,omitempty"`
	Decision          string   `json:"decision,omitempty"`
}

// ParseEvents reads a batch of request records for POST /v1/events: a JSON
// array of objects, or NDJSON (one object per line). The format is taken
// from contentType when it names NDJSON (application/x-ndjson,
// application/ndjson, application/jsonl), otherwise from the first
// non-space byte: '[' is an array, '{' is NDJSON (a single object is a
// batch of one). Field names and checks are documented on eventJSON.
//
// A record that fails a check is reported in EventBatch.Errors and the
// others are still accepted. now is the server's clock, for the future
// check (zero skips it).
//
// It returns ErrTooManyEvents (413) once the batch passes
// MaxEventsPerBatch records, and ErrMalformedEvents (400) for a body that is
// empty, is neither an array nor NDJSON, is an array cut off or broken
// mid-way, or is NDJSON of which no line is JSON at all.
func ParseEvents(body io.Reader, contentType string, now time.Time) (EventBatch, error) {
	return ParseEventsChecked(body, contentType, now, nil)
}

// ParseEventsChecked is ParseEvents with one more check: check sees each
// record that passed the others and may change it (fill in fields) or
// refuse it with an error, which is reported like theirs, with the
// record's index and line. A nil check accepts all.
func ParseEventsChecked(body io.Reader, contentType string, now time.Time, check func(*Record) error) (EventBatch, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	first, err := firstByte(br)
	if err != nil {
		return EventBatch{}, err
	}
	if isNDJSON(contentType) || first != '[' {
		if first != '{' && !isNDJSON(contentType) {
			return EventBatch{}, fmt.Errorf("%w: body starts with %q, want '[' or '{'", ErrMalformedEvents, first)
		}
		return parseNDJSON(br, now, check)
	}
	return parseArray(br, now, check)
}

func isNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
		"application/jsonlines", "application/json-seq":
		return true
	}
	return false
}

// firstByte skips white space and a UTF-8 byte order mark and returns
// the first byte without consuming it.
func firstByte(br *bufio.Reader) (byte, error) {
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xef, 0xbb, 0xbf}) {
		_, _ = br.Discard(3)
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return 0, fmt.Errorf("%w: empty body", ErrMalformedEvents)
		}
		if err != nil {
			return 0, fmt.Errorf("%w: read body: %v", ErrMalformedEvents, err)
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			_ = br.UnreadByte()
			return c, nil
		}
	}
}

func parseArray(br *bufio.Reader, now time.Time, check func(*Record) error) (EventBatch, error) {
	var batch EventBatch
	dec := json.NewDecoder(br)
	if _, err := dec.Token(); err != nil { // '['
		return EventBatch{}, fmt.Errorf("%w: %v", ErrMalformedEvents, err)
	}
	for index := 0; dec.More(); index++ {
		if index == MaxEventsPerBatch {
			return EventBatch{}, fmt.Errorf("%w: more than %d", ErrTooManyEvents, MaxEventsPerBatch)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return EventBatch{}, fmt.Errorf("%w: element %d: %v", ErrMalformedEvents, index, err)
		}
		rec, err := parseEvent(raw, now)
		if err == nil && check != nil {
			err = check(&rec)
		}
		if err != nil {
			batch.Errors = append(batch.Errors, EventError{Index: index, Message: err.Error()})
			continue
		}
		batch.Records = append(batch.Records, rec)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return EventBatch{}, fmt.Errorf("%w: %v", ErrMalformedEvents, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return EventBatch{}, fmt.Errorf("%w: data after the array", ErrMalformedEvents)
	}
	return batch, nil
}

func parseNDJSON(br *bufio.Reader, now time.Time, check func(*Record) error) (EventBatch, error) {
	var batch EventBatch
	var line []byte
	index, lineNo, jsonLines := 0, 0, 0
	for {
		var tooLong bool
		var err error
		line, tooLong, err = readLine(br, line[:0])
		if err != nil && err != io.EOF {
			return EventBatch{}, fmt.Errorf("%w: read body: %v", ErrMalformedEvents, err)
		}
		atEOF := err == io.EOF
		if atEOF && len(line) == 0 && !tooLong {
			break
		}
		lineNo++
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 && !tooLong {
			if atEOF {
				break
			}
			continue
		}
		if index == MaxEventsPerBatch {
			return EventBatch{}, fmt.Errorf("%w: more than %d", ErrTooManyEvents, MaxEventsPerBatch)
		}
		var rec Record
		switch {
		case tooLong:
			err = fmt.Errorf("line is longer than %d bytes", MaxEventLineBytes)
		case !json.Valid(trimmed):
			err = fmt.Errorf("not valid JSON")
		default:
			jsonLines++
			if rec, err = parseEvent(trimmed, now); err == nil && check != nil {
				err = check(&rec)
			}
		}
		if err != nil {
			batch.Errors = append(batch.Errors, EventError{Index: index, Line: lineNo, Message: err.Error()})
		} else {
			batch.Records = append(batch.Records, rec)
		}
		index++
		if atEOF {
			break
		}
	}
	if index == 0 {
		return EventBatch{}, fmt.Errorf("%w: no records", ErrMalformedEvents)
	}
	if jsonLines == 0 {
		return EventBatch{}, fmt.Errorf("%w: no line is JSON", ErrMalformedEvents)
	}
	return batch, nil
}

// readLine reads up to and including the next newline into buf (without
// the newline). A line longer than MaxEventLineBytes is consumed and
// reported as tooLong with buf left short.
func readLine(br *bufio.Reader, buf []byte) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxEventLineBytes+1 { // +1: the newline
				tooLong = true
				buf = buf[:0]
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch err {
		case nil:
			return bytes.TrimSuffix(buf, []byte{'\n'}), tooLong, nil
		case bufio.ErrBufferFull:
			continue
		default:
			return buf, tooLong, err
		}
	}
}

// parseEvent decodes and checks one record.
func parseEvent(raw []byte, now time.Time) (Record, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return Record{}, errors.New("a record must be a JSON object")
	}
	var e eventJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Record{}, jsonProblem(err)
	}
	return e.record(now)
}

// jsonProblem turns encoding/json's errors into messages for API clients.
func jsonProblem(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("%s: want %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// record checks e and converts it; the error lists every problem found.
func (e *eventJSON) record(now time.Time) (Record, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	rec := Record{
		RequestID: e.RequestID, Method: e.Method, Route: e.Route, Path: e.Path, Status: e.Status,
		RequestBytes: e.RequestBytes, ResponseBytes: e.ResponseBytes,
		KeyID: e.KeyID, OwnerID: e.OwnerID, Tier: e.Tier, UserAgent: e.UserAgent,
		CacheStatus: ParseCacheStatus(e.CacheStatus),
	}
	if e.Time == nil {
		bad("time is required")
	} else if t, err := time.Parse(time.RFC3339Nano, *e.Time); err != nil {
		bad("time %q is not RFC 3339 (e.g. 2026-11-27T09:30:00.123Z)", *e.Time)
	} else {
		rec.Time = t.UTC()
		if t.Before(earliestEventTime) {
			bad("time %s is before 2000", *e.Time)
		} else if !now.IsZero() && t.After(now.Add(MaxEventFuture)) {
			bad("time %s is more than %s in the future", *e.Time, MaxEventFuture)
		}
	}
	switch {
	case e.Method == "":
		bad("method is required")
	case !ValidMethod(e.Method):
		bad("method %q is not an HTTP method", truncateUTF8(e.Method, MaxMethodBytes))
	}
	if e.Status < 100 || e.Status > 599 {
		if e.Status == 0 {
			bad("status is required")
		} else {
			bad("status %d is not in 100–599", e.Status)
		}
	}
	for _, l := range []struct {
		name string
		ms   *float64
		dst  *time.Duration
	}{{"latency_ms", e.LatencyMS, &rec.Latency}, {"upstream_latency_ms", e.UpstreamLatencyMS, &rec.UpstreamLatency}} {
		if l.ms == nil {
			continue
		}
		if *l.ms < 0 || *l.ms > maxEventLatencyMS || math.IsNaN(*l.ms) {
			bad("%s %v is not in 0–%d", l.name, *l.ms, maxEventLatencyMS)
			continue
		}
		*l.dst = time.Duration(math.Round(*l.ms*1000)) * time.Microsecond
	}
	if e.RequestBytes < 0 {
		bad("request_bytes %d is negative", e.RequestBytes)
	}
	if e.ResponseBytes < 0 {
		bad("response_bytes %d is negative", e.ResponseBytes)
	}
	for _, f := range []struct {
		name, value string
		limit       int
	}{
		{"request_id", e.RequestID, MaxIDBytes}, {"key_id", e.KeyID, MaxIDBytes},
		{"owner_id", e.OwnerID, MaxIDBytes}, {"tier", e.Tier, MaxIDBytes}, {"route", e.Route, MaxRouteBytes},
	} {
		if len(f.value) > f.limit {
			bad("%s is longer than %d bytes", f.name, f.limit)
		}
	}
	if e.ClientIP != "" {
		ip, err := netip.ParseAddr(e.ClientIP)
		if err != nil {
			bad("client_ip %q is not an IP address", truncateUTF8(e.ClientIP, 64))
		}
		rec.ClientIP = ip
	}
	if e.Country != "" {
		if len(e.Country) != 2 || !isAlnum(e.Country[0]) || !isAlnum(e.Country[1]) {
			bad("country %q is not a two-letter code", truncateUTF8(e.Country, 16))
		}
		rec.Country = strings.ToUpper(e.Country)
	}
	if c, ok := decision.Parse(e.Decision); ok {
		rec.Decision = c
	} else {
		bad("decision %q is not a decision code (%s)", truncateUTF8(e.Decision, 64), decisionCodeList)
	}
	if e.ErrorCategory == "" {
		rec.ErrorCategory = CategorizeError(e.Status, rec.Decision)
	} else if c, err := ParseErrorCategory(e.ErrorCategory); err != nil {
		bad("error_category %q is not one of %s", truncateUTF8(e.ErrorCategory, 64), strings.Join(errorCategoryNames[:], ", "))
	} else {
		rec.ErrorCategory = c
	}
	if len(problems) > 0 {
		return Record{}, errors.New(strings.Join(problems, "; "))
	}
	rec.sanitize()
	return rec, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// decisionCodeList names the decision codes for ParseEvents' error messages.
var decisionCodeList = func() string {
	var names []string
	for _, c := range decision.Codes() {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ")
}()
