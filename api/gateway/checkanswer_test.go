package gateway

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/api/httpapi"
)

// checkAnswers are answers as checkRequest builds them: allowed, denied
// and rate-limited, with and without a key.
var checkAnswers = []struct {
	name string
	resp CheckResponse
}{
	{"allowed", CheckResponse{Allowed: true, Code: "VALID", KeyID: "key_01JABCDEF", OwnerID: "acme",
		Tier: "unlimited", Scopes: []string{"forms:read", "forms:write"}}},
	{"allowed-limited", CheckResponse{Allowed: true, Code: "VALID", KeyID: "key_01JABCDEF", OwnerID: "acme",
		Tier: "free", Scopes: []string{}, RateLimit: &CheckRateLimit{Policy: "100;w=60", Limit: 100, Remaining: 99, Reset: 1796640000}}},
	{"no-key", CheckResponse{Code: "MISSING_KEY", Scopes: []string{}, Message: "an API key is required: send it as Authorization: Bearer <key> or X-API-Key"}},
	{"denied-scopes-nil", CheckResponse{Code: "INSUFFICIENT_SCOPE", KeyID: "key_1", OwnerID: "o", Tier: "t",
		Message: "the API key lacks a scope this route requires"}},
	{"rate-limited", CheckResponse{Code: "RATE_LIMITED", KeyID: "key_01JABCDEF", OwnerID: "acme <a&b>",
		Tier: "free", Scopes: []string{}, RateLimit: &CheckRateLimit{Policy: "100;w=60", Limit: 100, Remaining: 0, Reset: 1796640060},
		RetryAfter: 60, Message: "rate limit exceeded; retry after the time in Retry-After"}},
	{"escapes", CheckResponse{Code: "X", OwnerID: "q\"\\\x00\x1f\b\f\n\r\t\x7f", Tier: "é\u2028\u2029\xff", Scopes: []string{"", "a\"b"},
		RateLimit: &CheckRateLimit{Limit: -1, Remaining: -9223372036854775808}, RetryAfter: -1, Message: "<>&"}},
}

// TestCheckAnswerGolden holds AppendJSON and today's encoder
// (httpapi.JSONBody) to the bytes in testdata/check_answers.golden.
func TestCheckAnswerGolden(t *testing.T) {
	var got, today bytes.Buffer
	for _, tc := range checkAnswers {
		got.WriteString(tc.name + ": ")
		got.Write(tc.resp.AppendJSON(nil))
		b, err := httpapi.JSONBody(http.Header{}, &tc.resp)
		if err != nil {
			t.Fatal(err)
		}
		today.WriteString(tc.name + ": ")
		today.Write(b)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "check_answers.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(today.Bytes(), golden) {
		t.Errorf("encoding/json:\n%s\ngolden:\n%s", today.Bytes(), golden)
	}
	if !bytes.Equal(got.Bytes(), golden) {
		t.Errorf("AppendJSON:\n%s\ngolden:\n%s", got.Bytes(), golden)
	}
}

// FuzzCheckAnswer holds AppendJSON to encoding/json's bytes for any
// strings and numbers in an answer.
func FuzzCheckAnswer(f *testing.F) {
	for _, tc := range checkAnswers {
		r := tc.resp
		f.Add(r.Allowed, r.Code, r.OwnerID, r.Tier, strings.Join(r.Scopes, ","), r.Message, r.RetryAfter, r.RateLimit != nil)
	}
	f.Fuzz(func(t *testing.T, allowed bool, code, owner, tier, scopes, message string, n int64, limited bool) {
		r := CheckResponse{Allowed: allowed, Code: code, KeyID: code + owner, OwnerID: owner, Tier: tier,
			Message: message, RetryAfter: n}
		if scopes != "" {
			r.Scopes = strings.Split(scopes, ",")
		}
		if limited {
			r.RateLimit = &CheckRateLimit{Policy: message, Limit: n, Remaining: -n, Reset: n / 3}
		}
		want, err := httpapi.JSONBody(http.Header{}, &r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON\n%q\nencoding/json\n%q", got, want)
		}
	})
}

// BenchmarkCheckAnswer compares AppendJSON with encoding/json on a
// rate-limited answer.
func BenchmarkCheckAnswer(b *testing.B) {
	r := &checkAnswers[4].resp
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := r.AppendJSON(make([]byte, 0, 320))
			httpapi.SetJSONHeaders(http.Header{}, len(out))
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := httpapi.JSONBody(http.Header{}, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
