package fastedge

import (
	"strings"
	"testing"
)

// FuzzSplitTarget: a request target in origin form splits into a path
// that starts with "/" and has no "?", and a query, which put back
// together are the target; any other target gives no path, which no
// route matches. Seeds: testdata/fuzz/FuzzSplitTarget.
func FuzzSplitTarget(f *testing.F) {
	f.Fuzz(func(t *testing.T, target string) {
		path, query := splitTarget(target)
		if !strings.HasPrefix(target, "/") {
			if path != "" || query != "" {
				t.Fatalf("%q: path %q query %q, want none", target, path, query)
			}
			return
		}
		if !strings.HasPrefix(path, "/") || strings.Contains(path, "?") {
			t.Fatalf("%q: path %q", target, path)
		}
		back := path
		if len(path) < len(target) {
			back += "?" + query
		}
		if back != target {
			t.Fatalf("%q split into %q and %q", target, path, query)
		}
	})
}

// Only the spellings the net/http router reads as forward auth take the
// fast path; the rest goes to the fallback, which answers as net/http.
func TestRoutesAsSent(t *testing.T) {
	for target, want := range map[string]bool{
		"/v1/authorize":         true,
		"/v1/authorize?x=1":     true,
		"/v1/authorize/":        true,
		"/v1/authorize/api/x":   true,
		"/v1/authorize%2Fapi":   false,
		"/v1/%61uthorize":       false,
		"//v1/authorize":        false,
		"/v1/authorizer":        false,
		"http://x/v1/authorize": false,
	} {
		path, _ := splitTarget(target)
		if got := isAuthorize(path); got != want {
			t.Errorf("%s: authorize %v, want %v", target, got, want)
		}
	}
}
