package fastedge

import (
	"bufio"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// TestUpstreamRequestHeaders: what the lean path sends upstream of a
// client's headers. The gateway's (up) replace the client's of the same
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

	var got []string
	for k, v := range req.Header.All() {
		got = append(got, string(k)+": "+string(v))
	}
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
