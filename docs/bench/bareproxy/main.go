// Command bareproxy is a reverse proxy on fasthttp with nothing of
// apiwarden's: no key check, no limits, no recording. It is the ceiling of
// the design apiwarden's fasthttp edge uses, for the peer benchmark
// (docs/BENCHMARKS.md, the peer benchmark's 09:35 rerun on 2026-12-07):
//
//	go run ./docs/bench/bareproxy -listen 127.0.0.1:18480 -upstream 127.0.0.1:19001 &
//	../shared/bench/peers.sh --apiwarden http://127.0.0.1:18480/ --key x
//
// With -contract it also carries the headers apiwarden's contract makes it
// send (SPEC.md §5: the key headers removed, the identity and forwarding
// headers added upstream, the rate-limit headers and request id added to
// the answer), with values of the sizes apiwarden sends, and still decides
// and records nothing: the floor of any proxy that keeps that contract on
// this design (docs/BENCHMARKS.md, "The contract's floor").
package main

import (
	"flag"
	"log"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18480", "address to serve")
	upstream := flag.String("upstream", "127.0.0.1:19001", "upstream host:port")
	contract := flag.Bool("contract", false, "carry apiwarden's request and answer headers")
	flag.Parse()
	client := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024}
	var ids atomic.Uint64
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.Request.Header.Del("Authorization")
		var id []byte
		if *contract {
			id = strconv.AppendUint([]byte("q0t4q5bkit-"), ids.Add(1), 10)
			addRequestHeaders(&ctx.Request.Header, id)
		}
		if err := client.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			return
		}
		if *contract {
			addAnswerHeaders(&ctx.Response.Header, id)
		}
	}
	log.Fatal((&fasthttp.Server{Handler: handler}).ListenAndServe(*listen))
}

// addRequestHeaders does to the upstream request what apiwarden's proxy
// does to its headers for a key of the unlimited tier without owner or
// scopes (whose headers apiwarden leaves out).
func addRequestHeaders(h *fasthttp.RequestHeader, id []byte) {
	h.Del("X-Api-Key")
	h.Set("X-Apiwarden-Tier", "unlimited")
	h.Set("X-Forwarded-For", "127.0.0.1")
	h.SetBytesV("X-Forwarded-Host", h.Host())
	h.Set("X-Forwarded-Proto", "http")
	h.SetBytesV("X-Request-Id", id)
	h.Set("X-Apiwarden-Key-Id", "key_0Vd74IP9gjlE1XSOPsMX")
}

// addAnswerHeaders adds what apiwarden adds to an allowed answer, the
// numbers formatted per request as apiwarden formats them.
func addAnswerHeaders(h *fasthttp.ResponseHeader, id []byte) {
	const limit, remaining = 60000000000, 59999999999
	reset := time.Now().Unix() + 1
	h.SetBytesV("X-Request-Id", id)
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(reset, 10))
	h.Set("Ratelimit-Policy", `"hour";q=1000000000000;w=3600, "minute";q=`+strconv.Itoa(limit)+";w=60")
	h.Set("Ratelimit", `"minute";r=`+strconv.Itoa(remaining)+";t=1")
	h.Set("X-Ratelimit-Limit", strconv.Itoa(limit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
}
