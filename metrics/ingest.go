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
	// hold (README.md, "The three ways in"); more is ErrTooManyEvents.
	MaxEventsPerBatch = 10000
	// MaxEventLineBytes bounds one NDJSON line or one array element; a
	// longer one is rejected on its own.
	MaxEventLineBytes = 64 << 10
	// MaxEventFieldBytes bounds every string and number of a record, field
	// names included; a record with a longer one is rejected on its own.
	// 8 KiB holds any path a web server takes in a request line (nginx's
	// large_client_header_buffers); what is stored is cut shorter still
	// (MaxPathBytes, MaxUserAgentBytes).
	MaxEventFieldBytes = 8 << 10
	// DefaultMaxEventFuture is how far past the server's clock a record's
	// time may be when IngestOptions.MaxFuture is 0, for clocks that drift.
	DefaultMaxEventFuture = 5 * time.Minute
	// DefaultMaxEventAge is the age past which /v1/events refuses a record
	// unless configured otherwise ([metrics] max_ingested_age).
	DefaultMaxEventAge = 24 * time.Hour
	// maxEventLatencyMS bounds latency_ms and upstream_latency_ms: a day.
	maxEventLatencyMS = 24 * 60 * 60 * 1000
	// maxEventMessageBytes bounds the message of one EventError, whatever
	// a record quotes into it.
	maxEventMessageBytes = 512
)

// earliestEventTime rejects times that are surely mistakes (a zero or
// Unix-seconds-as-milliseconds timestamp).
var earliestEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// IngestOptions are the checks of ParseEventsWith beyond each field's own.
type IngestOptions struct {
	// Now is the server's clock for the time window; zero skips the
	// window (a record may still not be dated before 2000).
	Now time.Time
	// MaxAge refuses records dated before Now-MaxAge, so that a caller
	// cannot file traffic into a period already billed; 0 takes any age.
	MaxAge time.Duration
	// MaxFuture refuses records dated after Now+MaxFuture; 0 means
	// DefaultMaxEventFuture.
	MaxFuture time.Duration
	// Check sees each record that passed every other check and may change
	// it (fill in fields) or refuse it with an error, which is reported
	// like theirs, with the record's index and line. Nil accepts all. It
	// runs last, so a record it accepts is in the batch.
	Check func(*Record) error
}

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
// exports. Unknown fields are an error for that record, and so is any
// string or number longer than MaxEventFieldBytes.
//
//	time                 RFC 3339 with optional fraction, required; not before
//	                     2000 and within IngestOptions' window of the
//	                     server's clock
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
//	decision             a decision code (package decision: VALID, RATE_LIMITED, …)
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
// The body is read as a stream: memory grows with the records accepted,
// each bounded by the field caps, never with the size of one element or
// line (MaxEventLineBytes, MaxEventFieldBytes).
//
// A record that fails a check is reported in EventBatch.Errors and the
// others are still accepted. now is the server's clock, for the future
// check (zero skips it); any age from 2000 on is taken.
//
// It returns ErrTooManyEvents (413) once the batch passes
// MaxEventsPerBatch records, and ErrMalformedEvents (400) for a body that is
// empty, is neither an array nor NDJSON, is an array cut off or broken
// mid-way, or is NDJSON of which no line is JSON at all.
func ParseEvents(body io.Reader, contentType string, now time.Time) (EventBatch, error) {
	return ParseEventsWith(body, contentType, IngestOptions{Now: now})
}

// ParseEventsWith is ParseEvents with the time window and the final check
// of opts. Errors as ParseEvents.
func ParseEventsWith(body io.Reader, contentType string, opts IngestOptions) (EventBatch, error) {
	if opts.MaxFuture <= 0 {
		opts.MaxFuture = DefaultMaxEventFuture
	}
	br := bufio.NewReaderSize(body, 64<<10)
	first, err := firstByte(br)
	if err != nil {
		return EventBatch{}, err
	}
	if isNDJSON(contentType) || first != '[' {
		if first != '{' && !isNDJSON(contentType) {
			return EventBatch{}, fmt.Errorf("%w: body starts with %q, want '[' or '{'", ErrMalformedEvents, first)
		}
		return parseNDJSON(br, &opts)
	}
	return parseArray(br, &opts)
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

func parseArray(br *bufio.Reader, opts *IngestOptions) (EventBatch, error) {
	var batch EventBatch
	a := arrayReader{br: br}
	more, err := a.open()
	for index := 0; more && err == nil; index++ {
		if index == MaxEventsPerBatch {
			return EventBatch{}, fmt.Errorf("%w: more than %d", ErrTooManyEvents, MaxEventsPerBatch)
		}
		var raw []byte
		var problem error
		if raw, problem, err = a.element(); err != nil {
			break
		}
		if problem == nil && !json.Valid(raw) {
			return EventBatch{}, fmt.Errorf("%w: element %d is not valid JSON", ErrMalformedEvents, index)
		}
		batch.add(index, 0, raw, problem, opts)
		more, err = a.separator(index)
	}
	if err != nil {
		return EventBatch{}, err
	}
	return batch, a.close()
}

// add parses one record and files it as accepted or as the error of
// element index (line, for NDJSON). A non-nil problem refuses it unread.
func (b *EventBatch) add(index, line int, raw []byte, problem error, opts *IngestOptions) {
	var rec Record
	err := problem
	if err == nil {
		rec, err = parseEvent(raw, opts)
	}
	if err == nil && opts.Check != nil {
		err = opts.Check(&rec)
	}
	if err != nil {
		b.Errors = append(b.Errors, EventError{Index: index, Line: line, Message: truncateUTF8(err.Error(), maxEventMessageBytes)})
		return
	}
	b.Records = append(b.Records, rec)
}

func parseNDJSON(br *bufio.Reader, opts *IngestOptions) (EventBatch, error) {
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
		var problem error
		switch {
		case tooLong:
			problem = fmt.Errorf("line is longer than %d bytes", MaxEventLineBytes)
		case !json.Valid(trimmed):
			problem = errors.New("not valid JSON")
		default:
			jsonLines++
		}
		batch.add(index, lineNo, trimmed, problem, opts)
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
func parseEvent(raw []byte, opts *IngestOptions) (Record, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return Record{}, errors.New("a record must be a JSON object")
	}
	var e eventJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Record{}, jsonProblem(err)
	}
	return e.record(opts)
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
func (e *eventJSON) record(opts *IngestOptions) (Record, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	rec := Record{
		RequestID: e.RequestID, Method: e.Method, Route: e.Route, Path: e.Path, Status: e.Status,
		RequestBytes: e.RequestBytes, ResponseBytes: e.ResponseBytes,
		KeyID: e.KeyID, OwnerID: e.OwnerID, Tier: e.Tier, UserAgent: e.UserAgent,
		CacheStatus: ParseCacheStatus(e.CacheStatus),
	}
	rec.Time = e.checkTime(opts, bad)
	e.checkLengths(bad)
	switch {
	case e.Method == "":
		bad("method is required")
	case len(e.Method) > MaxMethodBytes || !isToken(e.Method):
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
	// A cut string would keep the whole decoded one alive as long as the
	// record waits in the recorder's buffer.
	if len(rec.Path) < len(e.Path) {
		rec.Path = strings.Clone(rec.Path)
	}
	if len(rec.UserAgent) < len(e.UserAgent) {
		rec.UserAgent = strings.Clone(rec.UserAgent)
	}
	return rec, nil
}

// checkTime reads the record's time and checks it against the window of
// opts: not before 2000, not older than MaxAge, not more than MaxFuture
// ahead of Now.
func (e *eventJSON) checkTime(opts *IngestOptions, bad func(string, ...any)) time.Time {
	if e.Time == nil {
		bad("time is required")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, *e.Time)
	if err != nil {
		bad("time %q is not RFC 3339 (e.g. 2026-11-27T09:30:00.123Z)", truncateUTF8(*e.Time, 64))
		return time.Time{}
	}
	switch now := opts.Now; {
	case t.Before(earliestEventTime):
		bad("time %s is before 2000", *e.Time)
	case now.IsZero():
	case opts.MaxAge > 0 && t.Before(now.Add(-opts.MaxAge)):
		bad("time %s is more than %s in the past", *e.Time, opts.MaxAge)
	case t.After(now.Add(opts.MaxFuture)):
		bad("time %s is more than %s in the future", *e.Time, opts.MaxFuture)
	}
	return t.UTC()
}

// checkLengths refuses strings longer than their caps: the ids that must
// round-trip exactly at their stored length, the others (cut when stored)
// at MaxEventFieldBytes. The other fields' own checks refuse long values.
func (e *eventJSON) checkLengths(bad func(string, ...any)) {
	for _, f := range []struct {
		name, value string
		limit       int
	}{
		{"request_id", e.RequestID, MaxIDBytes}, {"key_id", e.KeyID, MaxIDBytes},
		{"owner_id", e.OwnerID, MaxIDBytes}, {"tier", e.Tier, MaxIDBytes}, {"route", e.Route, MaxRouteBytes},
		{"path", e.Path, MaxEventFieldBytes}, {"user_agent", e.UserAgent, MaxEventFieldBytes},
		{"cache_status", e.CacheStatus, MaxEventFieldBytes},
	} {
		if len(f.value) > f.limit {
			bad("%s is longer than %d bytes", f.name, f.limit)
		}
	}
}

// isToken reports whether s is an HTTP token (RFC 9110 tchar).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
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
