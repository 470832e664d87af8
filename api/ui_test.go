package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/ui"
)

var wantContentType = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// The default transport would ask for gzip and undo it silently.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func checkSecurityHeaders(t *testing.T, name string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": ui.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", name, k, got, v)
		}
	}
}

// Every embedded file, through the real admin router: status, content
// type, cache headers, ETag revalidation, gzip and the security headers.
func TestEveryDashboardFileIsServed(t *testing.T) {
	f := newFixture(t, adminToken)
	h := ui.New()
	files := h.Files()
	if len(files) < 5 {
		t.Fatalf("only %d embedded files: %v", len(files), files)
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			url := f.http.URL + h.URL(name)
			resp, body := get(t, url)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d", h.URL(name), resp.StatusCode)
			}
			if want := wantContentType[path.Ext(name)]; resp.Header.Get("Content-Type") != want {
				t.Fatalf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), want)
			}
			wantCache := ui.CacheImmutable
			if name == "index.html" {
				wantCache = ui.CacheRevalidate
			}
			if got := resp.Header.Get("Cache-Control"); got != wantCache {
				t.Fatalf("Cache-Control %q, want %q", got, wantCache)
			}
			etag := resp.Header.Get("ETag")
			if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
				t.Fatalf("ETag %q", etag)
			}
			if len(body) == 0 || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("%d bytes, encoding %q", len(body), resp.Header.Get("Content-Encoding"))
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("Vary %q", resp.Header.Get("Vary"))
			}
			checkSecurityHeaders(t, name, resp.Header)

			// Revalidation answers 304 with no body.
			resp, body = get(t, url, "If-None-Match", etag)
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Fatalf("If-None-Match: %d with %d bytes", resp.StatusCode, len(body))
			}
			checkSecurityHeaders(t, name+" (304)", resp.Header)

			// The same file without the build folder, or under an old
			// build, must be revalidated: it may change with the binary.
			if name != "index.html" {
				for _, p := range []string{ui.Prefix + name, ui.Prefix + "v/0123456789abcdef/" + name} {
					resp, _ = get(t, f.http.URL+p)
					if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != ui.CacheRevalidate {
						t.Fatalf("GET %s: %d, Cache-Control %q", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
					}
				}
			}

			// Compressed when asked, with its own ETag, and the same bytes inside.
			resp, gz := get(t, url, "Accept-Encoding", "gzip, deflate, br")
			if resp.Header.Get("Content-Encoding") == "gzip" {
				if resp.Header.Get("ETag") == etag {
					t.Fatal("the gzip variant has the identity ETag")
				}
				zr, err := gzip.NewReader(bytes.NewReader(gz))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				_, identity := get(t, url)
				if !bytes.Equal(plain, identity) {
					t.Fatal("gzip body differs from the file")
				}
			}

			// HEAD answers the headers alone.
			req, _ := http.NewRequest("HEAD", url, nil)
			hr, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			hr.Body.Close()
			if hr.StatusCode != 200 || hr.Header.Get("ETag") == "" {
				t.Fatalf("HEAD: %d", hr.StatusCode)
			}
		})
	}
}

func TestDashboardPathsAndErrors(t *testing.T) {
	f := newFixture(t, adminToken)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/ui", "/ui/index.html"} {
		resp, err := noRedirect.Get(f.http.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
			t.Fatalf("GET %s: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/ui/nothing.js", "/ui/v/", "/ui/v/abc", "/ui/v/abc/nothing.js", "/ui/v/abc/index.html", "/ui/../go.mod"} {
		resp, _ := get(t, f.http.URL+p)
		if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s: %d, Cache-Control %q", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		checkSecurityHeaders(t, p, resp.Header)
	}
	resp, _ := get(t, f.http.URL+"/ui/")
	if resp.Header.Get("Set-Cookie") != "" {
		t.Fatal("the page sets a cookie before login")
	}
}

// The page needs nothing the server does not embed: every asset that
// index.html and the modules refer to exists, no inline script or style
// attribute needs 'unsafe-inline', and no other host is named.
func TestDashboardIsSelfContained(t *testing.T) {
	f := newFixture(t, adminToken)
	h := ui.New()
	_, index := get(t, f.http.URL+"/ui/")
	build := "v/" + h.Build() + "/"
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 3 {
		t.Fatalf("index.html refers to %d files", len(refs))
	}
	files := map[string]bool{}
	for _, n := range h.Files() {
		files[n] = true
	}
	for _, m := range refs {
		name, ok := strings.CutPrefix(m[1], build)
		if !ok || !files[name] {
			t.Errorf("index.html refers to %q, which is not an embedded file under %s", m[1], build)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(index), -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("index.html has an inline script: %s", tag)
		}
	}
	if strings.Contains(string(index), "<style") {
		t.Error("index.html has an inline style sheet")
	}
	importRe := regexp.MustCompile(`(?:from\s+|import\()\s*'(\.{1,2}/[^']+)'`)
	for _, name := range h.Files() {
		_, body := get(t, f.http.URL+h.URL(name))
		text := string(body)
		if regexp.MustCompile(`\sstyle="`).MatchString(text) || strings.Contains(text, "setAttribute('style'") || strings.Contains(text, "innerHTML") {
			t.Errorf("%s sets inline styles or HTML (needs 'unsafe-inline' or risks injection)", name)
		}
		if regexp.MustCompile(`https?://[a-z0-9]`).MatchString(strings.ReplaceAll(text, "http://www.w3.org/2000/svg", "")) {
			t.Errorf("%s names another host", name)
		}
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range importRe.FindAllStringSubmatch(text, -1) {
			target := path.Join(path.Dir(name), m[1])
			if !files[target] {
				t.Errorf("%s imports %s, which is not embedded", name, m[1])
			}
		}
	}
}
