package fastedge

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// BenchmarkForwardHeaders is the lean path's own header work for one
// request of the peer benchmark (wrk's headers and the upstream's
// answer): the upstream request built from the client's and its head
// written, and the answer's headers copied with the gateway's.
func BenchmarkForwardHeaders(b *testing.B) {
	const key = "k0000000000000000000000000000500"
	var ctx fasthttp.RequestCtx
	raw := "GET / HTTP/1.1\r\nHost: 127.0.0.1:20010\r\nX-API-Key: " + key + "\r\nAuthorization: Bearer " + key + "\r\n\r\n"
	if err := ctx.Request.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	var ures fasthttp.Response
	ures.Header.SetNoDefaultContentType(true)
	head := "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 08:38:20 GMT\r\n\r\n"
	if err := ures.Header.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
		b.Fatal(err)
	}
	upValues := [][2]string{{"X-Forwarded-For", "127.0.0.1"}, {"X-Forwarded-Host", "127.0.0.1:20010"}, {"X-Forwarded-Proto", "http"},
		{"X-Request-Id", "09bik0f4j9-3"}, {"X-Apiwarden-Key-Id", "key_1"}, {"X-Apiwarden-Tier", "unlimited"}}
	respValues := [][2]string{{"Ratelimit-Policy", `"hour";q=1000000000000;w=3600, "minute";q=60000000000;w=60`},
		{"Ratelimit", `"minute";r=59999999999;t=1`}, {"X-Ratelimit-Limit", "60000000000"},
		{"X-Ratelimit-Remaining", "59999999999"}, {"X-Ratelimit-Reset", "1796632701"}}
	// As DecideProxy fills them for each request, and serveProxy resets
	// them: the gateway's side of the header work is in the loop.
	var up, resp gateway.Fields
	fill := func(f *gateway.Fields, values [][2]string) {
		f.Reset()
		for _, v := range values {
			f.Set(v[0], v[1])
		}
	}
	var req fasthttp.Request
	wire := bufio.NewWriterSize(io.Discard, 4096) // as the HostClient's pooled writer
	var out fasthttp.ResponseHeader
	body := upstreamBody{resp: &ures}
	b.ReportAllocs()
	for b.Loop() {
		req.Reset()
		fill(&up, upValues)
		fill(&resp, respValues)
		upstreamRequest(&req, &ctx, &gateway.ProxyCall{Target: "/"}, &up)
		if err := writeRequest(wire, &req); err != nil {
			b.Fatal(err)
		}
		wire.Reset(io.Discard)
		out.Reset()
		body.trailers = body.trailers[:0]
		body.copyHeaders(&out, &resp, "09bik0f4j9-3")
		addAnswerFields(&out, &resp)
	}
}
