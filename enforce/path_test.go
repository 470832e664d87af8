package enforce

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	strict := PathRules{}
	semicolons := PathRules{AllowSemicolons: true}
	backslashes := PathRules{AllowBackslashes: true}
	slashes := PathRules{AllowEncodedSlashes: true}
	dots := PathRules{AllowDotSegments: true}
	all := PathRules{AllowSemicolons: true, AllowBackslashes: true, AllowEncodedSlashes: true, AllowDotSegments: true}
	cases := []struct {
		rules   PathRules
		in      string
		want    string
		wantErr error
	}{
		{strict, "/api/forms/1", "/api/forms/1", nil},
		{strict, "", "/", nil},
		{strict, "/api//forms/./1/", "/api/forms/1/", nil},
		{strict, "/api/a%20b/%7Euser", "/api/a b/~user", nil},
		{strict, "/api/%2e/x", "/api/x", nil},
		{strict, "/api/a%25b", "/api/a%b", nil},
		{strict, "/api/admin;x=1/users", "", ErrPathSemicolon},
		{strict, "/api;/admin/users", "", ErrPathSemicolon},
		{strict, "/api/a%3Bb", "", ErrPathSemicolon},
		{strict, "/api/a%3bb", "", ErrPathSemicolon},
		{strict, `/api/public/..\admin\users`, "", ErrPathBackslash},
		{strict, "/api/a%5Cb", "", ErrPathBackslash},
		{strict, "/api/a%5cb", "", ErrPathBackslash},
		{strict, "/api/a%2Fb", "", ErrPathEncodedSlash},
		{strict, "/api/a%2fb", "", ErrPathEncodedSlash},
		{strict, "/api/a%00b", "", ErrPathNUL},
		{strict, "/api/a\x00b", "", ErrPathNUL},
		{strict, "/api/a%0Ab", "", ErrPathLineBreak},
		{strict, "/api/a%0db", "", ErrPathLineBreak},
		{strict, "/api/../admin", "", ErrPathDotSegment},
		{strict, "/api/..", "", ErrPathDotSegment},
		{strict, "/api/%2e%2E/admin", "", ErrPathDotSegment},
		{strict, "/api/.%2e/admin", "", ErrPathDotSegment},
		{strict, "/api/...", "/api/...", nil},
		{strict, "/api/..a/b..", "/api/..a/b..", nil},
		{strict, "/api/100%", "", ErrPathEncoding},
		{strict, "/api/%4", "", ErrPathEncoding},
		{strict, "/api/%zz", "", ErrPathEncoding},

		{semicolons, "/api/admin;x=1/users", "/api/admin/users", nil},
		{semicolons, "/api;/admin/users", "/api/admin/users", nil},
		{semicolons, "/api/a%3Bb", "/api/a;b", nil},           // encoded: part of the name
		{semicolons, "/api/..;/admin", "", ErrPathDotSegment}, // Tomcat reads "..;" as ".."
		{semicolons, "/api/;x/admin", "/api/admin", nil},
		{semicolons, "/api/a%00;b", "", ErrPathNUL},
		{semicolons, `/api\admin`, "", ErrPathBackslash},

		{backslashes, `/api\admin\users`, "/api/admin/users", nil},
		{backslashes, "/api%5Cadmin", "/api/admin", nil},
		{backslashes, `/api/public/..\admin`, "", ErrPathDotSegment},
		{backslashes, "/api;/admin", "", ErrPathSemicolon},

		{slashes, "/api%2Fadmin/users", "/api/admin/users", nil},
		{slashes, "/files/a%2Fb", "/files/a/b", nil},
		{slashes, "/api/public/..%2Fadmin", "", ErrPathDotSegment},
		{slashes, "/api%5Cadmin", "", ErrPathBackslash},

		{dots, "/api/public/../admin/users", "/api/admin/users", nil},
		{dots, "/api/public/%2e%2e/admin", "/api/admin", nil},
		{dots, "/../../etc/passwd", "/etc/passwd", nil},
		{dots, "/api/a%2Fb", "", ErrPathEncodedSlash},

		{all, `/api/public/..;x\admin%2Fusers`, "/api/admin/users", nil},
		{all, "/api/a%00b", "", ErrPathNUL},
		{all, "/api/a%0d%0aX-Injected:%20yes", "", ErrPathLineBreak},
		{all, "/api/%", "", ErrPathEncoding},
	}
	for _, c := range cases {
		got, err := c.rules.Normalize(c.in)
		if got != c.want || !errors.Is(err, c.wantErr) {
			t.Errorf("%+v.Normalize(%q) = %q, %v; want %q, %v", c.rules, c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestNormalizePathAllocatesNothingForPlainPaths(t *testing.T) {
	for _, p := range []string{"/api/forms/1", "/api/guests/7/rsvp/", "/"} {
		if n := testing.AllocsPerRun(100, func() { PathRules{}.Normalize(p) }); n != 0 {
			t.Errorf("Normalize(%q): %v allocations", p, n)
		}
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		PathRules{}.Normalize("/api/clients/42/notes")
	}
}

// FuzzNormalizePath checks the strict rules against the standard
// library's decoding: a path they accept decodes (url.PathUnescape) and
// cleans to exactly what Normalize returns, and held none of the forms
// they refuse (no '..' once decoded). Under any rules the result is clean
// and has no NUL, and relaxing a rule never changes how a path the strict
// rules accept is read. Seeds: testdata/fuzz/FuzzNormalizePath.
func FuzzNormalizePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string, allow uint8) {
		strictGot, strictErr := PathRules{}.Normalize(p)
		if strictErr == nil {
			decoded, err := url.PathUnescape(p)
			if err != nil {
				t.Fatalf("strict rules accept %q, which does not decode: %v", p, err)
			}
			if want := CleanPath(decoded); strictGot != want {
				t.Fatalf("strict Normalize(%q) = %q, want %q", p, strictGot, want)
			}
			if hasDotDot(decoded) {
				t.Fatalf("strict rules accept %q, which decodes to %q", p, decoded)
			}
			for _, refused := range []string{";", "\\", "\x00", "%2f", "%5c", "%3b", "%00", "%0a", "%0d"} {
				if strings.Contains(strings.ToLower(p), refused) {
					t.Fatalf("strict rules accept %q, which has %q", p, refused)
				}
			}
		}
		rules := PathRules{AllowSemicolons: allow&1 != 0, AllowBackslashes: allow&2 != 0,
			AllowEncodedSlashes: allow&4 != 0, AllowDotSegments: allow&8 != 0}
		got, err := rules.Normalize(p)
		if err != nil {
			if strictErr == nil {
				t.Fatalf("%+v refuses %q (%v), which the strict rules accept", rules, p, err)
			}
			return
		}
		if strictErr == nil && got != strictGot {
			t.Fatalf("%+v reads %q as %q, the strict rules as %q", rules, p, got, strictGot)
		}
		if CleanPath(got) != got || strings.ContainsAny(got, "\x00\r\n") {
			t.Fatalf("%+v.Normalize(%q) = %q: not clean, or has a NUL or a line break", rules, p, got)
		}
	})
}
