package fastedge

import (
	"bytes"
	"io"
	"net/http/httputil"
	"testing"
	"testing/iotest"
)

// FuzzChunker: a body re-framed as chunked by chunker, whatever the reads
// it is given in, reads back through net/http's chunked reader as the
// same bytes, and ends with the last chunk and an empty trailer.
func FuzzChunker(f *testing.F) {
	f.Add([]byte("hello"), false)
	f.Add([]byte(""), true)
	f.Add(bytes.Repeat([]byte("0\r\n\r\n"), 5000), true)
	f.Fuzz(func(t *testing.T, body []byte, oneByteReads bool) {
		var r io.Reader = bytes.NewReader(body)
		if oneByteReads {
			r = iotest.OneByteReader(r)
		}
		framed, err := io.ReadAll(&chunker{r: r})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(framed)))
		if err != nil {
			t.Fatalf("%q: %v", framed, err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("read back %q, want %q", got, body)
		}
		// The last chunk and the empty trailer end it; net/http's body
		// reader, not the chunked reader, reads the trailer's CRLF.
		if end := []byte("0\r\n\r\n"); !bytes.HasSuffix(framed, end) || (len(framed) > len(end) && !bytes.HasSuffix(framed, append([]byte("\r\n"), end...))) {
			t.Fatalf("%q does not end with the last chunk and an empty trailer", framed)
		}
	})
}

// A read error of the body ends the framed stream with that error, so
// net/http sees a broken body rather than a short one.
func TestChunkerPassesReadErrors(t *testing.T) {
	_, err := io.ReadAll(&chunker{r: iotest.ErrReader(io.ErrUnexpectedEOF)})
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("error %v, want %v", err, io.ErrUnexpectedEOF)
	}
}
