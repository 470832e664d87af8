package gateway

import (
	"bytes"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/api/httpapi"
)

// todayCheck decodes a check body as Check did before decodeCheckBody:
// encoding/json through httpapi.DecodeJSONFrom.
func todayCheck(data []byte) (checkRequest, *httpapi.Error) {
	var req checkRequest
	if err := httpapi.DecodeJSONFrom(bytes.NewReader(data), "", &req, false); err != nil {
		return checkRequest{}, httpapi.AsError(err)
	}
	return req, nil
}

// sameCheck fails t when decodeCheckBody and encoding/json differ on
// data: in the verdict, the error answer or the fields. It also holds
// the fast decoder alone to taking only what encoding/json takes, with
// the same fields, and returns whether it took data.
func sameCheck(t *testing.T, data []byte) bool {
	t.Helper()
	want, wantErr := todayCheck(data)
	var got checkRequest
	gotErr := decodeCheckBody(data, &got)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%q: error %v, encoding/json's %v", data, gotErr, wantErr)
	case gotErr != nil && (gotErr.Code != wantErr.Code || gotErr.Message != wantErr.Message):
		t.Fatalf("%q: error %s %q, encoding/json's %s %q", data, gotErr.Code, gotErr.Message, wantErr.Code, wantErr.Message)
	case gotErr == nil && got != want:
		t.Fatalf("%q: decoded %+v, encoding/json %+v", data, got, want)
	}
	var fast checkRequest
	if !decodeCheckFast(string(data), &fast) {
		return false
	}
	if wantErr != nil || fast != want {
		t.Fatalf("%q: the fast decoder took it as %+v; encoding/json: %+v, %v", data, fast, want, wantErr)
	}
	return true
}

// checkBodies are bodies on both sides of every rule of the contract in
// checkbody.go; they seed FuzzCheckBody too. fast says the fast decoder
// takes the body itself; the others go to encoding/json.
var checkBodies = []struct {
	body string
	fast bool
}{
	{`{"key":"wsk_abc","method":"GET","path":"/api/forms/1"}`, true},
	{` {"key" : "k" , "method":"POST","path":"/p?q=1","ip":"10.0.0.1","origin":"https://a.example","cost":5}` + "\r\n\t", true},
	{`{}`, true},
	{`{"cost":0}`, true},
	{`{"cost":-0}`, true},
	{`{"cost":-17}`, true},
	{`{"cost":123456789012345678}`, true},
	{`{"cost":1234567890123456789}`, false},
	{`{"cost":99999999999999999999}`, false}, // overflows int64: refused
	{`{"cost":1.0}`, false},                  // refused: not an integer
	{`{"cost":1e2}`, false},                  // refused
	{`{"cost":01}`, false},                   // refused: leading zero
	{`{"cost":-}`, false},                    // refused
	{`{"cost":"5"}`, false},                  // refused: a string
	{`{"cost":null}`, true},
	{`{"key":null}`, true},
	{`{"key":"a","key":null}`, true}, // null keeps "a"
	{`{"key":"a","key":"b"}`, true},  // the last counts
	{`{"key":5}`, false},             // refused: a number
	{`{"key":true}`, false},          // refused
	{`{"key":["a"]}`, false},         // refused
	{`{"key":{}}`, false},            // refused
	{`{"KEY":"a"}`, false},           // taken, case-insensitively
	{`{"Method":"GET"}`, false},
	{`{"k\u0065y":"a"}`, false},          // taken: the name unescaped
	{"{\"\u212aey\":\"a\"}", false},      // taken: the Kelvin sign folds to k
	{`{"unknown":1}`, false},             // refused: unknown field
	{`{"key":"a","x":{"y":[1]}}`, false}, // refused
	{`{"key":"a\"b\\c\/d\b\f\n\r\te"}`, true},
	{`{"key":"\u0000"}`, true},
	{`{"key":"\u00e9\u20AC"}`, true},
	{`{"key":"\ud83d\ude00"}`, true}, // a surrogate pair
	{`{"key":"\ud83d"}`, true},       // a lone surrogate: U+FFFD
	{`{"key":"\ud83dx"}`, true},
	{`{"key":"\ude00\ud83d"}`, true},
	{`{"key":"\uZZZZ"}`, false},            // refused: bad escape
	{`{"key":"\x"}`, false},                // refused
	{`{"key":"\'"}`, false},                // refused
	{`{"key":"a` + "\x01" + `"}`, false},   // refused: a control character
	{`{"key":"` + "\xff\xfe" + `"}`, true}, // invalid UTF-8: U+FFFD each
	{`{"key":"` + "\xed\xa0\x80" + `"}`, true},
	{`{"key":"é€😀"}`, true},
	{`{"key":"a"} `, true},
	{`{"key":"a"}x`, false},  // refused: trailing data
	{`{"key":"a"}{}`, false}, // refused
	{`{"key":"a"}}`, false},  // refused
	{`{"key":"a"}` + "\v", false},
	{"\v" + `{"key":"a"}`, false},
	{"\ufeff" + `{"key":"a"}`, false}, // refused: a byte order mark
	{`{"key":"a",}`, false},           // refused
	{`{"key":"a"`, false},             // refused: cut short
	{`{"key":"a`, false},
	{`{"key"`, false},
	{`{`, false},
	{``, false},      // refused: empty
	{" \n\t", false}, // refused: empty
	{"\v\f", false},  // refused: empty by bytes.TrimSpace
	{`null`, false},  // taken: an empty request
	{` null `, false},
	{`[]`, false},    // refused: not an object
	{`"key"`, false}, // refused
	{`{"key":nul}`, false},
	{`{"key":nullx}`, false},
	{`{"cost":nul}`, false},
}

// TestCheckBodyMatchesEncodingJSON runs the table through sameCheck and
// checks which bodies the fast decoder takes itself: the common case
// must not go to encoding/json.
func TestCheckBodyMatchesEncodingJSON(t *testing.T) {
	for _, tc := range checkBodies {
		if fast := sameCheck(t, []byte(tc.body)); fast != tc.fast {
			t.Errorf("%q: fast decoder took it: %v, want %v", tc.body, fast, tc.fast)
		}
	}
}

// TestCheckBodyRefusals pins the error answers of the contract in
// checkbody.go to today's words.
func TestCheckBodyRefusals(t *testing.T) {
	for _, tc := range []struct {
		body, contentType, code, message string
	}{
		{`{}`, "text/plain", httpapi.CodeUnsupportedMedia, `send the body as application/json, got "text/plain"`},
		{`{}`, "application/json; charset=", httpapi.CodeUnsupportedMedia, `send the body as application/json, got "application/json; charset="`},
		{" \v", "", httpapi.CodeInvalidJSON, "request body is empty; send a JSON object"},
		{`{"nope":1}`, "", httpapi.CodeInvalidJSON, `unknown field "nope"`},
		{`{"cost":"5"}`, "", httpapi.CodeInvalidJSON, `field "cost" must be a number, got string`},
		{`{"cost":1.5}`, "", httpapi.CodeInvalidJSON, `field "cost" must be a number, got number 1.5`},
		{`{"key":5}`, "", httpapi.CodeInvalidJSON, `field "key" must be a string, got number`},
		{`[]`, "", httpapi.CodeInvalidJSON, `the body must be a JSON object, got array`},
		{`{"key":"a"}x`, "", httpapi.CodeInvalidJSON, "request body has data after the JSON object"},
		{`{"key":"a"}}`, "", httpapi.CodeInvalidJSON, "request body has data after the JSON object"},
		{`{"key":"a"`, "", httpapi.CodeInvalidJSON, "malformed JSON: the body ends in the middle of a value"},
		{`{"key":"\x"}`, "", httpapi.CodeInvalidJSON, "malformed JSON at byte 10: invalid character 'x' in string escape code"},
		{`{"key":"a` + "\x01" + `"}`, "", httpapi.CodeInvalidJSON, "malformed JSON at byte 10: invalid character '\\x01' in string literal"},
		{`{"cost":01}`, "", httpapi.CodeInvalidJSON, "malformed JSON at byte 10: invalid character '1' after object key:value pair"},
		{`{"key":"` + strings.Repeat("a", httpapi.MaxJSONBody) + `"}`, "", httpapi.CodePayloadTooLarge, "request body is larger than 1048576 bytes"},
	} {
		var req checkRequest
		e := readCheck(&Inbound{BodyBytes: []byte(tc.body), Header: InboundHeader{ContentType: tc.contentType}}, &req)
		if e == nil || e.Code != tc.code || e.Message != tc.message {
			t.Errorf("%.40q (%q): %v, want %s %q", tc.body, tc.contentType, e, tc.code, tc.message)
		}
		// The same answer through net/http's reader, as Check reads it there.
		e2 := readCheck(&Inbound{Body: strings.NewReader(tc.body), Header: InboundHeader{ContentType: tc.contentType}}, &req)
		if e2 == nil || e2.Code != tc.code || e2.Message != tc.message {
			t.Errorf("%.40q (%q) from a reader: %v, want %s %q", tc.body, tc.contentType, e2, tc.code, tc.message)
		}
	}
}

// FuzzCheckBody holds decodeCheckBody to encoding/json's verdict, error
// answer and fields on any body, and the fast decoder to taking only
// what encoding/json takes.
func FuzzCheckBody(f *testing.F) {
	for _, tc := range checkBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameCheck(t, data)
	})
}

var benchCheckBody = []byte(`{"key":"wsk_keDa4MLp26dy5Gdx6NLbKZWeZZI4TY0gJSg1","method":"GET","path":"/api/forms/1"}`)

// BenchmarkCheckBody compares the hand decoder with encoding/json on the
// body of the /v1/check benchmark (docs/BENCHMARKS.md).
func BenchmarkCheckBody(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req checkRequest
			if e := decodeCheckBody(benchCheckBody, &req); e != nil {
				b.Fatal(e)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, e := todayCheck(benchCheckBody); e != nil {
				b.Fatal(e)
			}
		}
	})
}
