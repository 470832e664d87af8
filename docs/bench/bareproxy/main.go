// Command bareproxy is a reverse proxy on fasthttp with nothing of
// apiwarden's: no key check, no limits, no recording. It is the ceiling of
// the design apiwarden's fasthttp edge uses, for the peer benchmark
// (docs/BENCHMARKS.md, the peer benchmark's 09:35 rerun on 2026-12-07):
//
//	go run ./docs/bench/bareproxy -listen 127.0.0.1:18480 -upstream 127.0.0.1:19001 &
//	../shared/bench/peers.sh --apiwarden http://127.0.0.1:18480/ --key x
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18480", "address to serve")
	upstream := flag.String("upstream", "127.0.0.1:19001", "upstream host:port")
	flag.Parse()
	client := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024}
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.Request.Header.Del("Authorization")
		if err := client.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}
	log.Fatal((&fasthttp.Server{Handler: handler}).ListenAndServe(*listen))
}
