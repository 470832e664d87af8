package loopedge

import (
	"bytes"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/metrics"
)

// BenchmarkRoundTrip is one request through a real loop over loopback:
// a keep-alive client connection, the gateway's lean path (an internal
// route: no key; every request recorded), and an upstream that answers
// fixed bytes. The allocations are the whole process's; the client, the
// upstream and the recorder here allocate none a request, so they are
// the loop's and the gateway's.
func BenchmarkRoundTrip(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0)) // a setting of the whole test binary
	var recs countedRecords
	s := newProxy(b, fixedUpstream(b), false, &recs, gateway.ProxyOptions{ResponseHeaderTimeout: 5 * time.Second}, 0)
	s.SpareP() // as app.Run does
	conn := edgetest.Dial(b, edgetest.Serve(b, s.Serve, s.Close))
	req := []byte(benchHead)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		buf = readAnswer(b, conn, buf[:0])
	}
	b.StopTimer()
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
		b.Fatalf("answer %q", buf)
	}
}

// readAnswer reads into buf one answer whose body is fixedBody.
func readAnswer(b *testing.B, conn net.Conn, buf []byte) []byte {
	for {
		if end := bytes.Index(buf, []byte("\r\n\r\n")); end >= 0 && len(buf) >= end+4+len(fixedBody) {
			return buf
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		if err != nil {
			b.Fatal(err)
		}
		buf = buf[:len(buf)+n]
	}
}

const fixedBody = `{"ok":true,"page":2,"n":27}`

// fixedUpstream answers every request head it reads (no body) with
// benchAnswer and fixedBody, allocating nothing a request; it returns its
// http:// URL.
func fixedUpstream(b *testing.B) string {
	answer := []byte(benchAnswer + fixedBody)
	return edgetest.RawUpstream(b, func(conn net.Conn) {
		buf := make([]byte, 16<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			for range bytes.Count(buf[:n], []byte("\r\n\r\n")) {
				if _, err := conn.Write(answer); err != nil {
					return
				}
			}
		}
	})
}

// countedRecords counts the records it is given and keeps none.
type countedRecords struct{ n atomic.Int64 }

func (r *countedRecords) Record(*metrics.Record) bool {
	r.n.Add(1)
	return true
}
