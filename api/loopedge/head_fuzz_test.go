package loopedge

import (
	"bufio"
	"bytes"
	"slices"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzParseHead checks the strict parser against fasthttp's: whenever
// parseHead takes a head as the plain shape, fasthttp parses the same
// bytes to the same method, target, Host, Content-Length and header
// values, name by name in order. Seeds are in testdata/fuzz/FuzzParseHead.
func FuzzParseHead(f *testing.F) {
	for _, seed := range []string{
		"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nX-Api-Key: k\r\n\r\n",
		"POST /p HTTP/1.1\r\nhost: a:80\r\ncontent-length: 3\r\nx-a:  b \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := headEnd(raw, 16<<10)
		if err != nil || n == 0 {
			return
		}
		head := bytes.Clone(raw[:n])
		var h requestHead
		if parseHead(head, &h) != nil {
			return
		}
		var fh fasthttp.RequestHeader
		if err := fh.Read(bufio.NewReader(bytes.NewReader(raw[:n]))); err != nil {
			t.Fatalf("lean for the loop, refused by fasthttp: %v\n%q", err, raw[:n])
		}
		if string(fh.Method()) != string(h.method) || string(fh.RequestURI()) != string(h.target) || string(fh.Host()) != string(h.host) {
			t.Fatalf("request line or Host: fasthttp %q %q %q, loop %q %q %q", fh.Method(), fh.RequestURI(), fh.Host(), h.method, h.target, h.host)
		}
		if h.hasLength && int64(fh.ContentLength()) != h.contentLength {
			t.Fatalf("Content-Length: fasthttp %d, loop %d", fh.ContentLength(), h.contentLength)
		}
		for _, name := range namesOf(h.fields) {
			switch name {
			case "Host", "Content-Length", "Connection", "Cookie", "Content-Type", "User-Agent":
				continue // kept apart by fasthttp, compared above or not read by the gateway's rules alike
			}
			var loop [][]byte
			for _, f := range h.fields {
				if string(f.name) == name {
					loop = append(loop, f.value)
				}
			}
			fast := fh.PeekAll(name)
			if !slices.EqualFunc(loop, fast, bytes.Equal) {
				t.Fatalf("%s: fasthttp %q, loop %q\n%q", name, fast, loop, raw[:n])
			}
		}
	})
}

func namesOf(fields []field) []string {
	var names []string
	for _, f := range fields {
		if !slices.Contains(names, string(f.name)) {
			names = append(names, string(f.name))
		}
	}
	return names
}
