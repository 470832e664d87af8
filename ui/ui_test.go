package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/julienschmidt/httprouter"
)

func TestEmbeddedFilesLoad(t *testing.T) {
	h := New()
	if len(h.Build()) != 16 {
		t.Fatalf("build %q", h.Build())
	}
	index := h.assets["index.html"]
	if strings.Contains(string(index.body), buildPlaceholder) || !strings.Contains(string(index.body), "v/"+h.Build()+"/app.js") {
		t.Fatal("index.html does not refer to the assets of this build")
	}
	for _, name := range h.Files() {
		if strings.HasPrefix(h.URL(name), Prefix+"v/") == (name == "index.html") {
			t.Fatalf("URL(%s) = %s", name, h.URL(name))
		}
	}
}

func TestBuildChangesWithAnyFile(t *testing.T) {
	a := fstest.MapFS{"static/index.html": {Data: []byte(`<script src="v/{{build}}/a.js"></script>`)}, "static/a.js": {Data: []byte("1")}}
	b := fstest.MapFS{"static/index.html": a["static/index.html"], "static/a.js": {Data: []byte("2")}}
	ha, err := newHandler(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := newHandler(b)
	if err != nil {
		t.Fatal(err)
	}
	if ha.Build() == hb.Build() || ha.assets["index.html"].etag == hb.assets["index.html"].etag {
		t.Fatal("a change in one asset leaves the build or index.html's ETag the same")
	}
}

func TestInconsistentFilesAreRefused(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no index":          {"static/a.js": {Data: []byte("1")}},
		"unknown extension": {"static/index.html": {Data: []byte("x")}, "static/font.woff3": {Data: []byte("1")}},
	} {
		if _, err := newHandler(fsys); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRegisterMountsOnHTTPRouter(t *testing.T) {
	r := httprouter.New()
	Register(r)
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/ui/", 200}, {"HEAD", "/ui/", 200}, {"GET", "/ui", 301}, {"GET", "/ui/nope.css", 404},
	} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
	}
	w := httptest.NewRecorder()
	New().ServeHTTP(w, httptest.NewRequest("POST", "/ui/", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d", w.Code)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"":                        false,
		"gzip":                    true,
		"gzip, deflate, br, zstd": true,
		"br;q=1.0, gzip;q=0.8":    true,
		"GZIP":                    true,
		"gzip;q=0":                false,
		"deflate":                 false,
		"x-gzip":                  false,
	} {
		if got := acceptsGzip(ae); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}
