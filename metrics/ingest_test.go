package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
)

var ingestNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const goodEvent = `{"time":"2026-11-27T09:30:00.123456Z","request_id":"req-42","method":"GET","route":"/api/forms/*",` +
	`"path":"/api/forms/7?api_key=wsk_x&page=2","status":200,"latency_ms":12.5,"upstream_latency_ms":11.25,` +
	`"request_bytes":0,"response_bytes":5120,"key_id":"key_1","owner_id":"org_1","tier":"premium",` +
	`"client_ip":"203.0.113.9","country":"de","user_agent":"curl/8.5.0","cache_status":"HIT","decision":"VALID"}`

func TestParseEventsArray(t *testing.T) {
	body := "[" + goodEvent + "," + strings.Replace(goodEvent, `"status":200`, `"status":503`, 1) + "]"
	batch, err := ParseEvents(strings.NewReader(body), "application/json", ingestNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Records) != 2 || len(batch.Errors) != 0 {
		t.Fatalf("%d records, errors %v", len(batch.Records), batch.Errors)
	}
	want := Record{
		Time: time.Date(2026, 11, 27, 9, 30, 0, 123456000, time.UTC), RequestID: "req-42", Method: "GET",
		Route: "/api/forms/*", Path: "/api/forms/7?page=2", Status: 200, Latency: 12500 * time.Microsecond,
		UpstreamLatency: 11250 * time.Microsecond, ResponseBytes: 5120, KeyID: "key_1", OwnerID: "org_1",
		Tier: "premium", ClientIP: netip.MustParseAddr("203.0.113.9"), Country: "DE", UserAgent: "curl/8.5.0",
		ErrorCategory: ErrorNone, CacheStatus: CacheHit, Decision: decision.Valid,
	}
	if !reflect.DeepEqual(batch.Records[0], want) {
		t.Fatalf("got  %+v\nwant %+v", batch.Records[0], want)
	}
	if batch.Records[1].ErrorCategory != ErrorUpstream5xx {
		t.Fatalf("error category of a 503 without one: %v", batch.Records[1].ErrorCategory)
	}
}

func TestParseEventsNDJSONWithBadLines(t *testing.T) {
	lines := []string{
		goodEvent,
		"",
		strings.Replace(goodEvent, `"status":200`, `"status":700`, 1),
		`{"time":`,
		strings.Replace(goodEvent, `"method":"GET"`, `"method":"GET","colour":"red"`, 1),
		"   ",
		strings.Replace(goodEvent, `"status":200`, `"status":"200"`, 1),
		strings.Replace(goodEvent, `"latency_ms":12.5`, `"latency_ms":-1`, 1),
		`{"method":"GET","status":200}`,
		goodEvent,
	}
	batch, err := ParseEvents(strings.NewReader(strings.Join(lines, "\n")+"\n"), "", ingestNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Records) != 2 {
		t.Fatalf("%d records accepted, want 2", len(batch.Records))
	}
	wantErrs := []struct {
		line, index int
		contains    string
	}{
		{3, 1, "status 700"},
		{4, 2, "not valid JSON"},
		{5, 3, `unknown field "colour"`},
		{7, 4, "status: want int"},
		{8, 5, "latency_ms"},
		{9, 6, "time is required"},
	}
	if len(batch.Errors) != len(wantErrs) {
		t.Fatalf("errors %+v", batch.Errors)
	}
	for i, w := range wantErrs {
		e := batch.Errors[i]
		if e.Line != w.line || e.Index != w.index || !strings.Contains(e.Message, w.contains) {
			t.Errorf("error %d = %+v, want line %d index %d containing %q", i, e, w.line, w.index, w.contains)
		}
	}
	// The errors encode as the API sends them.
	b, _ := json.Marshal(batch.Errors[0])
	if string(b) != `{"index":1,"line":3,"message":"status 700 is not in 100–599"}` {
		t.Fatalf("json %s", b)
	}
}

func TestParseEventsArrayWithBadElement(t *testing.T) {
	body := "[" + goodEvent + `, 42, {"time":"yesterday","method":"GET","status":200}, ` + goodEvent + "]"
	batch, err := ParseEvents(strings.NewReader(body), "application/json", ingestNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Records) != 2 || len(batch.Errors) != 2 || batch.Errors[0].Index != 1 || batch.Errors[1].Index != 2 ||
		batch.Errors[1].Line != 0 || !strings.Contains(batch.Errors[1].Message, "RFC 3339") {
		t.Fatalf("%d records, errors %+v", len(batch.Records), batch.Errors)
	}
}

func TestParseEventsLimits(t *testing.T) {
	many := func(n int, sep string) string {
		return strings.Repeat(goodEvent+sep, n-1) + goodEvent
	}
	for _, tc := range []struct {
		name, body string
		want       error
		records    int
	}{
		{"array at the limit", "[" + many(MaxEventsPerBatch, ",") + "]", nil, MaxEventsPerBatch},
		{"array over the limit", "[" + many(MaxEventsPerBatch+1, ",") + "]", ErrTooManyEvents, 0},
		{"ndjson at the limit", many(MaxEventsPerBatch, "\n") + "\n\n", nil, MaxEventsPerBatch},
		{"ndjson over the limit", many(MaxEventsPerBatch+1, "\n"), ErrTooManyEvents, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch, err := ParseEvents(strings.NewReader(tc.body), "", ingestNow)
			if !errors.Is(err, tc.want) || len(batch.Records) != tc.records {
				t.Fatalf("err %v, %d records", err, len(batch.Records))
			}
		})
	}
}

func TestParseEventsMalformed(t *testing.T) {
	for _, body := range []string{
		"", "   \n", "hello", "<xml/>", "[" + goodEvent, "[" + goodEvent + "] trailing", "[1,,2]",
		"{garbage\n{more garbage", "42",
	} {
		if _, err := ParseEvents(strings.NewReader(body), "", ingestNow); !errors.Is(err, ErrMalformedEvents) {
			t.Errorf("%q: %v, want ErrMalformedEvents", body, err)
		}
	}
	// An empty array is a valid batch of nothing.
	if batch, err := ParseEvents(strings.NewReader(" [ ] "), "", ingestNow); err != nil || len(batch.Records) != 0 {
		t.Errorf("empty array: %v", err)
	}
}

func TestParseEventsContentTypeAndDetails(t *testing.T) {
	// NDJSON declared: a line that is an array is that line's problem.
	batch, err := ParseEvents(strings.NewReader("["+goodEvent+"]\n"+goodEvent), "application/x-ndjson; charset=utf-8", ingestNow)
	if err != nil || len(batch.Records) != 1 || len(batch.Errors) != 1 {
		t.Fatalf("%v %+v", err, batch)
	}
	// Byte order mark, CRLF line ends, a time zone offset.
	body := "\ufeff" + strings.Replace(goodEvent, "2026-11-27T09:30:00.123456Z", "2026-11-27T10:30:00+01:00", 1) + "\r\n" + goodEvent + "\r\n"
	batch, err = ParseEvents(strings.NewReader(body), "", ingestNow)
	if err != nil || len(batch.Records) != 2 || !batch.Records[0].Time.Equal(time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)) {
		t.Fatalf("%v %+v", err, batch)
	}
	// Too far in the future, before 2000, an unknown decision, a bad address.
	for _, bad := range []string{
		strings.Replace(goodEvent, "2026-11-27T09:30:00.123456Z", "2026-11-27T14:00:00Z", 1),
		strings.Replace(goodEvent, "2026-11-27T09:30:00.123456Z", "1970-01-01T00:00:01Z", 1),
		strings.Replace(goodEvent, `"VALID"`, `"ALLOWED"`, 1),
		strings.Replace(goodEvent, "203.0.113.9", "not-an-ip", 1),
		strings.Replace(goodEvent, `"GET"`, `"GE T"`, 1),
		strings.Replace(goodEvent, `"de"`, `"Germany"`, 1),
		strings.Replace(goodEvent, `"req-42"`, `"`+strings.Repeat("x", 200)+`"`, 1),
	} {
		batch, err := ParseEvents(strings.NewReader(bad), "", ingestNow)
		if err != nil || len(batch.Errors) != 1 {
			t.Errorf("%s: %v %+v", bad, err, batch)
		}
	}
	// A line longer than the limit is refused on its own.
	long := strings.Replace(goodEvent, "curl/8.5.0", strings.Repeat("u", MaxEventLineBytes), 1)
	batch, err = ParseEvents(strings.NewReader(long+"\n"+goodEvent), "", ingestNow)
	if err != nil || len(batch.Records) != 1 || len(batch.Errors) != 1 || batch.Errors[0].Line != 1 {
		t.Fatalf("long line: %v %+v", err, batch.Errors)
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	g := newTrafficGen(12, ingestNow.Add(-time.Hour), 100)
	var buf bytes.Buffer
	var want []Record
	for range 500 {
		var rec Record
		g.next(&rec)
		rec.sanitize()
		want = append(want, rec)
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	batch, err := ParseEvents(&buf, "application/x-ndjson", ingestNow)
	if err != nil || len(batch.Errors) != 0 {
		t.Fatalf("%v %+v", err, batch.Errors)
	}
	for i := range want {
		if !reflect.DeepEqual(batch.Records[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, batch.Records[i], want[i])
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte("[" + goodEvent + "]"))
	f.Add([]byte(goodEvent + "\n" + goodEvent + "\n"))
	f.Add([]byte(`[{"time":"2026-01-01T00:00:00Z","method":"GET","status":200},{"x":1}]`))
	f.Add([]byte("{}\n{\"time\":1}\n\n"))
	f.Add([]byte(" [] "))
	f.Fuzz(func(t *testing.T, body []byte) {
		batch, err := ParseEvents(bytes.NewReader(body), "", ingestNow)
		if err != nil {
			if !errors.Is(err, ErrMalformedEvents) && !errors.Is(err, ErrTooManyEvents) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(batch.Records)+len(batch.Errors) > MaxEventsPerBatch {
			t.Fatalf("%d records and %d errors", len(batch.Records), len(batch.Errors))
		}
		for _, rec := range batch.Records {
			// Whatever is accepted survives a JSON round trip unchanged.
			b, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseEvents(bytes.NewReader(b), "", ingestNow)
			if err != nil || len(again.Records) != 1 || !reflect.DeepEqual(again.Records[0], rec) {
				t.Fatalf("round trip of %s: %v %+v", b, err, again)
			}
		}
	})
}

func BenchmarkParseEvents(b *testing.B) {
	g := newTrafficGen(13, ingestNow.Add(-time.Hour), 100)
	var buf bytes.Buffer
	for range 1000 {
		var rec Record
		g.next(&rec)
		bj, _ := json.Marshal(rec)
		buf.Write(bj)
		buf.WriteByte('\n')
	}
	benchParseEvents(b, buf.Bytes(), 1000)
}

// benchParseEvents parses body, which holds n events, b.N times.
func benchParseEvents(b *testing.B, body []byte, n int) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseEvents(bytes.NewReader(body), "", ingestNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
}

// The time window: MaxAge back (when set), MaxFuture ahead (5 minutes
// when not set), both inclusive; never before 2000.
func TestParseEventsTimeWindow(t *testing.T) {
	at := func(d time.Duration) string {
		return `{"time":"` + ingestNow.Add(d).Format(time.RFC3339) + `","method":"GET","status":200}`
	}
	for _, tc := range []struct {
		name   string
		opts   IngestOptions
		offset time.Duration
		want   string // "" = taken
	}{
		{"a day back, at the edge", IngestOptions{MaxAge: 24 * time.Hour}, -24 * time.Hour, ""},
		{"a second more", IngestOptions{MaxAge: 24 * time.Hour}, -24*time.Hour - time.Second, "more than 24h0m0s in the past"},
		{"a month back", IngestOptions{MaxAge: 24 * time.Hour}, -30 * 24 * time.Hour, "in the past"},
		{"no age bound", IngestOptions{}, -30 * 24 * time.Hour, ""},
		{"five minutes ahead, at the edge", IngestOptions{}, 5 * time.Minute, ""},
		{"a second more", IngestOptions{}, 5*time.Minute + time.Second, "more than 5m0s in the future"},
		{"half an hour ahead", IngestOptions{}, 30 * time.Minute, "in the future"},
		{"a wider future", IngestOptions{MaxFuture: time.Hour}, 30 * time.Minute, ""},
		{"before 2000 without an age bound", IngestOptions{}, -30 * 365 * 24 * time.Hour, "before 2000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Now = ingestNow
			batch, err := ParseEventsWith(strings.NewReader(at(tc.offset)), "", opts)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == "" && len(batch.Records) != 1:
				t.Errorf("refused: %+v", batch.Errors)
			case tc.want != "" && (len(batch.Errors) != 1 || !strings.Contains(batch.Errors[0].Message, tc.want)):
				t.Errorf("errors %+v, want one saying %q", batch.Errors, tc.want)
			}
		})
	}
}
