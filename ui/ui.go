// Package ui is apiwarden's dashboard: plain HTML, CSS and JavaScript
// modules embedded in the binary with go:embed and served under /ui/.
// There is no build step and no third-party code; the page talks only to
// the admin API of the server that served it.
//
// Caching: index.html is answered with "Cache-Control: no-cache" and an
// ETag, so a browser revalidates it on every load and gets a 304 while
// nothing changed. It refers to every other asset under /ui/v/BUILD/,
// where BUILD is a hash of all embedded files; those answers are
// immutable for a year, because a new binary with any change has a new
// BUILD and so new URLs. Modules import each other with relative paths,
// so they stay inside the same BUILD folder without any rewriting. An
// asset asked for under another (old) BUILD, or without one, is served
// with no-cache, so a page left open across an upgrade still works.
//
// Every answer carries a Content-Security-Policy that allows scripts,
// styles and connections from this origin only (no inline script, no
// inline style), and denies framing.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

// Prefix is where the dashboard is mounted.
const Prefix = "/ui/"

// buildPlaceholder is replaced in index.html by the build hash.
const buildPlaceholder = "{{build}}"

// ContentSecurityPolicy is sent with every dashboard answer. The page
// needs nothing from another host and no inline code: charts are drawn on
// canvas, and positions are set through the CSSOM, which style-src does
// not govern.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes is explicit rather than mime.TypeByExtension, whose answers
// depend on the host's mime.types file. An embedded file with another
// extension makes New panic, so the handler test catches it.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// Cache-Control values.
const (
	CacheRevalidate = "no-cache"
	CacheImmutable  = "public, max-age=31536000, immutable"
)

// asset is one embedded file, ready to serve.
type asset struct {
	name        string // path inside static/, e.g. "app.js"
	contentType string
	body        []byte
	etag        string
	gzBody      []byte // nil when compression does not pay
	gzETag      string
}

// Handler serves the dashboard. Build it with New.
type Handler struct {
	assets map[string]*asset
	build  string
}

// New loads the embedded files. It panics if they are inconsistent (an
// unknown extension, no index.html): that is a bug in this package, found
// by its tests, never a runtime condition.
func New() *Handler {
	h, err := newHandler(embedded)
	if err != nil {
		panic(err)
	}
	return h
}

func newHandler(root fs.FS) (*Handler, error) {
	static, err := fs.Sub(root, "static")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	err = fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		files[p] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := files["index.html"]; !ok {
		return nil, fmt.Errorf("ui: static/index.html is missing")
	}

	// The build hash covers every file, index.html included, in a fixed order.
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	sum := sha256.New()
	for _, name := range names {
		fmt.Fprintf(sum, "%s\x00%d\x00", name, len(files[name]))
		sum.Write(files[name])
	}
	h := &Handler{assets: map[string]*asset{}, build: hex.EncodeToString(sum.Sum(nil))[:16]}

	for _, name := range names {
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil, fmt.Errorf("ui: static/%s: no content type for extension %q; add it to contentTypes", name, path.Ext(name))
		}
		body := files[name]
		if name == "index.html" {
			body = bytes.ReplaceAll(body, []byte(buildPlaceholder), []byte(h.build))
		}
		h.assets[name] = newAsset(name, ct, body)
	}
	return h, nil
}

func newAsset(name, contentType string, body []byte) *asset {
	digest := sha256.Sum256(body)
	tag := hex.EncodeToString(digest[:])[:24]
	a := &asset{name: name, contentType: contentType, body: body, etag: `"` + tag + `"`}
	if strings.HasPrefix(contentType, "text/") || contentType == "image/svg+xml" || contentType == "application/json" {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			a.gzBody = buf.Bytes()
			a.gzETag = `"` + tag + `-gz"`
		}
	}
	return a
}

// Build is the hash that versions asset URLs.
func (h *Handler) Build() string { return h.build }

// Files lists the embedded files by their path inside static/, sorted.
func (h *Handler) Files() []string {
	names := make([]string, 0, len(h.assets))
	for name := range h.assets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// URL is the path a page should use for an embedded file: index.html at
// /ui/, everything else under the current build, cached for good.
func (h *Handler) URL(name string) string {
	if name == "index.html" {
		return Prefix
	}
	return Prefix + "v/" + h.build + "/" + name
}

// Router is the part of httprouter.Router that Register uses.
type Router interface {
	Handler(method, path string, handler http.Handler)
}

// Register mounts the dashboard on r: GET and HEAD of /ui and /ui/*.
func Register(r Router) {
	h := New()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Handler(m, "/ui", h)
		r.Handler(m, "/ui/*filepath", h)
	}
}

// SetSecurityHeaders sets the headers every dashboard answer carries.
// The session routes of the admin API use it too.
func SetSecurityHeaders(hdr http.Header) {
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

// ServeHTTP answers GET and HEAD under /ui.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	SetSecurityHeaders(hdr)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: the dashboard is read with GET", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/ui" || p == "/ui/index.html" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		notFound(w, p)
		return
	}
	cache := CacheRevalidate
	name := rest
	if rest == "" {
		name = "index.html"
	} else if v, ok := strings.CutPrefix(rest, "v/"); ok {
		build, file, found := strings.Cut(v, "/")
		if !found {
			notFound(w, p)
			return
		}
		name = file
		if build == h.build {
			cache = CacheImmutable
		}
	}
	a, ok := h.assets[name]
	if !ok || (name == "index.html" && rest != "") {
		notFound(w, p)
		return
	}
	body, etag := a.body, a.etag
	hdr.Add("Vary", "Accept-Encoding")
	if a.gzBody != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = a.gzBody, a.gzETag
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", cache)
	hdr.Set("ETag", etag)
	// ServeContent answers If-None-Match with 304, and HEAD and Range.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func notFound(w http.ResponseWriter, p string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "404 not found: the dashboard has no file "+p+"; open "+Prefix, http.StatusNotFound)
}

// acceptsGzip reads Accept-Encoding well enough for browsers: gzip listed
// and not refused with q=0.
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
