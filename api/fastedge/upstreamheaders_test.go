package fastedge

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// TestUpstreamRequestHeaders: what the lean path sends upstream of a
// client's headers, read from the bytes writeRequest writes. The gateway's (up) replace the client's of the same
// name and go once each; apiwarden's own headers the client sent never
// go; hop-by-hop and Connection-named headers stay behind; the client's
// other headers go as sent, in their order.
func TestUpstreamRequestHeaders(t *testing.T) {
	var ctx fasthttp.RequestCtx
	raw := "GET /x HTTP/1.1\r\nHost: app.example\r\nX-Request-Id: the-client's\r\nX-Forwarded-Proto: https\r\n" +
		"X-Forwarded-For: 203.0.113.9\r\nX-Apiwarden-Tier: gold\r\nX-Apiwarden-Owner: someone\r\nAccept: */*\r\n" +
		"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-App: 2\r\nX-App: 3\r\n\r\n"
	if err := ctx.Request.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	up := upstreamFields(map[string]string{"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Host": "app.example",
		"X-Forwarded-Proto": "http", "X-Request-Id": "ours", "X-Apiwarden-Key-Id": "key_1", "X-Apiwarden-Tier": "free"})
	var req fasthttp.Request
	upstreamRequest(&req, &ctx, &gateway.ProxyCall{Target: "/x"}, up)
	got := sentHeaders(t, &req)
	want := []string{"Host: app.example", "Accept: */*", "X-App: 2", "X-App: 3",
		"X-Apiwarden-Key-Id: key_1", "X-Apiwarden-Tier: free", "X-Forwarded-For: 203.0.113.9, 127.0.0.1",
		"X-Forwarded-Host: app.example", "X-Forwarded-Proto: http", "X-Request-Id: ours"}
	// The client's come first, in order; the gateway's after them, in
	// whatever order it names them.
	clientPart := 4
	if !slices.Equal(got[:min(clientPart, len(got))], want[:clientPart]) {
		t.Errorf("the client's headers upstream: %q, want %q first", got, want[:clientPart])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("upstream headers:\n got %q\nwant %q", got, want)
	}
}

// upstreamFields is the gateway's upstream headers as DecideProxy hands
// them to the lean path.
func upstreamFields(values map[string]string) *gateway.Fields {
	var f gateway.Fields
	for name, v := range values {
		f.Set(name, v)
	}
	return &f
}

// sentHeaders is the header lines of req as writeRequest writes it, read
// back by fasthttp's parser, in order: what the upstream reads.
func sentHeaders(t *testing.T, req *fasthttp.Request) []string {
	t.Helper()
	var wire bytes.Buffer
	bw := bufio.NewWriter(&wire)
	if err := writeRequest(bw, req); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	var sent fasthttp.Request
	sent.Header.DisableNormalizing()
	if err := sent.Read(bufio.NewReader(&wire)); err != nil {
		t.Fatalf("%v reading %q", err, wire.String())
	}
	var got []string
	for k, v := range sent.Header.All() {
		got = append(got, string(k)+": "+string(v))
	}
	return got
}

// TestGatewayFieldsOnTheWire: a gateway header's value with CR or LF in
// it goes upstream on its one line, those bytes spaces, as fasthttp's
// Add sends it; and a request fasthttp's Request.Write writes (here, a
// body stream) carries the gateway's headers once, also when the
// HostClient writes it a second time (a retry).
func TestGatewayFieldsOnTheWire(t *testing.T) {
	var ctx fasthttp.RequestCtx
	raw := "POST /x HTTP/1.1\r\nHost: app.example\r\nContent-Length: 2\r\n\r\nhi"
	if err := ctx.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	up := upstreamFields(map[string]string{"X-Forwarded-Host": "a\r\nX-Injected: 1\nb", "X-Request-Id": "ours"})
	var req fasthttp.Request
	upstreamRequest(&req, &ctx, &gateway.ProxyCall{Target: "/x"}, up)
	got := sentHeaders(t, &req)
	if !slices.Contains(got, "X-Forwarded-Host: a  X-Injected: 1 b") || slices.ContainsFunc(got, func(h string) bool {
		return strings.HasPrefix(h, "X-Injected")
	}) {
		t.Errorf("a value with CR and LF went upstream as %q", got)
	}

	for attempt := range 2 {
		req.SetBodyStream(strings.NewReader("hi"), 2)
		got := sentHeaders(t, &req)
		if n := countPrefix(got, "X-Request-Id: ours"); n != 1 {
			t.Errorf("attempt %d through Request.Write: X-Request-Id %d times in %q", attempt, n, got)
		}
	}
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
