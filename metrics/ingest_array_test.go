package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// repeatReader yields n copies of one byte without holding them.
type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range n {
		p[i] = r.b
	}
	r.n -= n
	return n, nil
}

// allocatedBy returns the bytes allocated while fn ran.
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A batch whose middle record holds one huge string or number is read
// with memory bounded by the caps, whatever the size of that field, in
// either format; that record is refused with a message naming the field,
// and the others are kept.
func TestParseEventsHugeFieldCostsBoundedMemory(t *testing.T) {
	const huge = 16 << 20
	small := `{"time":"2026-11-27T09:30:00Z","method":"GET","status":200}`
	for _, tc := range []struct {
		name, before, after string
		fill                byte
		want                string
	}{
		{"user_agent", `"user_agent":"`, `"`, 'a', "user_agent is longer than"},
		{"path", `"path":"/`, `"`, 'p', "path is longer than"},
		{"route", `"route":"/`, `"`, 'r', "route is longer than"},
		{"request_id", `"request_id":"`, `"`, 'i', "request_id is longer than"},
		{"escapes", `"user_agent":"`, `"`, '\\', "user_agent is longer than"},
		{"number", `"status":1`, ``, '0', "status is longer than"},
		{"field name", `"`, `":1`, 'n', "a field name is longer than"},
	} {
		for _, format := range []string{"array", "ndjson"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				fill := huge
				if tc.fill == '\\' {
					fill = huge &^ 1 // pairs: escaped backslashes
				}
				head, sep, tail := "[", ",", "]"
				if format == "ndjson" {
					head, sep, tail = "", "\n", "\n"
				}
				body := io.MultiReader(
					strings.NewReader(head+small+sep+`{"time":"2026-11-27T09:30:01Z","method":"GET",`+tc.before),
					&repeatReader{tc.fill, fill},
					strings.NewReader(tc.after+`,"status":200}`+sep+small+tail))
				var batch EventBatch
				var err error
				allocated := allocatedBy(func() { batch, err = ParseEvents(body, "", ingestNow) })
				if err != nil {
					t.Fatal(err)
				}
				if allocated > 1<<20 {
					t.Errorf("a %d MiB field allocated %d KiB; want under 1 MiB", huge>>20, allocated>>10)
				}
				if len(batch.Records) != 2 || len(batch.Errors) != 1 || batch.Errors[0].Index != 1 {
					t.Fatalf("%d records, errors %+v", len(batch.Records), batch.Errors)
				}
				// NDJSON lines are refused by length before their fields are seen.
				if msg := batch.Errors[0].Message; format == "array" && !strings.Contains(msg, tc.want) {
					t.Errorf("message %q, want it to contain %q", msg, tc.want)
				}
			})
		}
	}
}

// The cap is the same in both formats: a field of MaxEventFieldBytes is
// taken (and cut when stored), one byte more refuses the record.
func TestParseEventsFieldCap(t *testing.T) {
	for _, n := range []int{MaxEventFieldBytes, MaxEventFieldBytes + 1} {
		ua := strings.Repeat("u", n)
		ev := `{"time":"2026-11-27T09:30:00Z","method":"GET","status":200,"user_agent":"` + ua + `","path":"/` + ua[1:] + `"}`
		for _, body := range []string{"[" + ev + "]", ev + "\n"} {
			batch, err := ParseEvents(strings.NewReader(body), "", ingestNow)
			if err != nil {
				t.Fatal(err)
			}
			if n == MaxEventFieldBytes {
				if len(batch.Records) != 1 || len(batch.Records[0].UserAgent) != MaxUserAgentBytes || len(batch.Records[0].Path) != MaxPathBytes {
					t.Errorf("%d bytes: %+v", n, batch.Errors)
				}
				continue
			}
			if len(batch.Errors) != 1 || !strings.Contains(batch.Errors[0].Message, "user_agent is longer than 8192 bytes") {
				t.Errorf("%d bytes: %+v", n, batch.Errors)
			}
		}
	}
	// A message never grows with what the record quotes into it.
	name := strings.Repeat("n", MaxEventFieldBytes)
	batch, err := ParseEvents(strings.NewReader(`[{"`+name+`":1}]`), "", ingestNow)
	if err != nil || len(batch.Errors) != 1 || len(batch.Errors[0].Message) > maxEventMessageBytes {
		t.Fatalf("%v %+v", err, batch.Errors)
	}
}

// Strings whose escapes straddle the reader's 64 KiB chunks do not lose
// the array's structure: the element after them is read as it is.
func TestParseEventsArrayEscapesAcrossChunks(t *testing.T) {
	small := `{"time":"2026-11-27T09:30:00Z","method":"GET","status":200}`
	for _, unit := range []string{`\\`, `\"`, `\\\"`, `\u0022`, `"`} {
		for pad := range 8 {
			value := strings.Repeat(unit, (70<<10)/len(unit))
			if unit == `"` {
				value = "" // a plain, short string: the control case
			}
			body := "[" + strings.Repeat(" ", pad) + `{"time":"2026-11-27T09:30:00Z","method":"GET","status":200,"user_agent":"` +
				value + `"},` + small + "]"
			batch, err := ParseEvents(strings.NewReader(body), "", ingestNow)
			if err != nil {
				t.Fatalf("unit %s pad %d: %v", unit, pad, err)
			}
			wantErrors := 1
			if value == "" {
				wantErrors = 0
			}
			if len(batch.Errors) != wantErrors || len(batch.Records) != 2-wantErrors {
				t.Fatalf("unit %s pad %d: %d records, errors %+v", unit, pad, len(batch.Records), batch.Errors)
			}
		}
	}
}

// FuzzEventArray holds the streaming array reader to encoding/json: for
// a body within the caps, the batch is malformed exactly when the array
// is not valid JSON, and each element is taken or refused exactly as the
// record decoder takes or refuses it alone.
func FuzzEventArray(f *testing.F) {
	f.Add([]byte("[" + goodEvent + "]"))
	f.Add([]byte(`[{"time":"2026-01-01T00:00:00Z","method":"GET","status":200},{"x":1}, 42, "s", [1,{"a":[]}], null]`))
	f.Add([]byte(`[{"user_agent":"a\"b\\","time":"2026-11-27T09:30:00Z","method":"GET","status":200}]`))
	f.Add([]byte(`[1,,2]`))
	f.Add([]byte(`[{"a":}]`))
	f.Add([]byte(`[{"a":1}`))
	f.Add([]byte(`[] x`))
	f.Add([]byte(`[{"a":1} {"b":2}]`))
	f.Add([]byte(`[ {"a" : "\u00e9" , "b":-1.5e3} ]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) == 0 || trimmed[0] != '[' || len(body) > MaxEventFieldBytes {
			return // other bodies are NDJSON; larger ones meet the caps
		}
		batch, err := ParseEvents(bytes.NewReader(body), "application/json", ingestNow)
		var elems []json.RawMessage
		jsonErr := json.Unmarshal(body, &elems)
		if jsonErr != nil || len(elems) > MaxEventsPerBatch {
			if err == nil {
				t.Fatalf("accepted a batch encoding/json refuses (%v): %q", jsonErr, body)
			}
			if !errors.Is(err, ErrMalformedEvents) && !errors.Is(err, ErrTooManyEvents) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused %q, which encoding/json reads: %v", body, err)
		}
		if len(batch.Records)+len(batch.Errors) != len(elems) {
			t.Fatalf("%d records and %d errors for %d elements", len(batch.Records), len(batch.Errors), len(elems))
		}
		refused := map[int]bool{}
		for _, e := range batch.Errors {
			refused[e.Index] = true
		}
		for i, raw := range elems {
			_, alone := parseEvent(bytes.TrimSpace(raw), &IngestOptions{Now: ingestNow, MaxFuture: DefaultMaxEventFuture})
			if (alone != nil) != refused[i] {
				t.Fatalf("element %d %s: refused %v in the batch, alone: %v", i, raw, refused[i], alone)
			}
		}
	})
}

func BenchmarkParseEventsArray(b *testing.B) {
	g := newTrafficGen(13, ingestNow.Add(-time.Hour), 100)
	records := make([]Record, 1000)
	for i := range records {
		g.next(&records[i])
	}
	body, err := json.Marshal(records)
	if err != nil {
		b.Fatal(err)
	}
	benchParseEvents(b, body, len(records))
}
