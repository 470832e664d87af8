package fastedge

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// copyHeaders reads the upstream's answer once: a header the upstream sets
// with a value wins over the gateway's of that name, one it sends empty
// does not, the request id is the upstream's when it sends one, and the
// cache status the record keeps is Cache-Status before X-Cache. The
// gateway's headers are added after it by addAnswerFields, as forward does.
func TestCopyHeadersOnePass(t *testing.T) {
	var ures fasthttp.Response
	ures.Header.SetNoDefaultContentType(true)
	head := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Cache: MISS\r\nX-Ratelimit-Limit: 7\r\nRatelimit: \r\n" +
		"Cache-Status: edge; hit\r\nX-Request-Id: from-the-app\r\n\r\n"
	if err := ures.Header.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
		t.Fatal(err)
	}
	var resp gateway.Fields
	resp.Set("X-Ratelimit-Limit", "100")
	resp.Set("Ratelimit", `"minute";r=99;t=1`)
	resp.Set("X-Ratelimit-Remaining", "99")
	var out fasthttp.ResponseHeader
	b := upstreamBody{resp: &ures}
	if stream := b.copyHeaders(&out, &resp, "ours"); stream {
		t.Error("an answer of known length read as a stream")
	}
	addAnswerFields(&out, &resp)
	for name, want := range map[string]string{
		"X-Ratelimit-Limit": "7", "X-Ratelimit-Remaining": "99", "X-Request-Id": "from-the-app", "X-Cache": "MISS",
	} {
		if got := out.PeekAll(name); len(got) != 1 || string(got[0]) != want {
			t.Errorf("%s: %q, want %q once", name, got, want)
		}
	}
	if got := out.PeekAll("Ratelimit"); len(got) != 2 || string(got[1]) != `"minute";r=99;t=1` {
		t.Errorf("Ratelimit: %q, want the upstream's empty value and the gateway's", got)
	}
	if string(b.cacheStatus) != "edge; hit" || string(b.xCache) != "MISS" {
		t.Errorf("cache status %q, X-Cache %q", b.cacheStatus, b.xCache)
	}
}
