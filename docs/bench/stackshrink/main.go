// Command stackshrink shows what closing many idle keep-alive connections
// at once costs a fasthttp server in resident memory, and why
// (docs/BENCHMARKS.md, "Tidy (2026-12-07)"). Each connection's one
// request runs a handler as deep as the proxy's, so its worker's stack
// grows to 8 KiB; the connections then idle, and the command prints the
// stacks in use and RSS, closes them all, runs one collection and prints
// them again with the peak. fasthttp keeps a closed connection's worker
// goroutine in its pool for up to 10 s; a collection in that time halves
// the stack of each (its stack is mostly unused there), allocating the
// new half before it frees the old. GODEBUG=gcshrinkstackoff=1 turns
// that off:
//
//	go build -o /tmp/stackshrink ./docs/bench/stackshrink
//	for i in 1 2 3 4 5 6 7 8; do /tmp/stackshrink; GODEBUG=gcshrinkstackoff=1 /tmp/stackshrink; done
//
// -mode net/http runs the same on net/http, whose goroutine per
// connection ends with it. The process needs two descriptors a connection.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	n := flag.Int("n", 9000, "connections")
	mode := flag.String("mode", "fasthttp", "the server: fasthttp or net/http")
	depth := flag.Int("depth", 20, "the handler's recursion, about 300 bytes of stack each")
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	var open, idle atomic.Int64 // connections open, and answered once
	if *mode == "fasthttp" {
		s := &fasthttp.Server{ReduceMemoryUsage: true, IdleTimeout: time.Minute,
			Handler: func(ctx *fasthttp.RequestCtx) { deep(*depth); ctx.WriteString("ok") },
			ConnState: func(_ net.Conn, st fasthttp.ConnState) {
				switch st {
				case fasthttp.StateNew:
					open.Add(1)
				case fasthttp.StateIdle:
					idle.Add(1)
				case fasthttp.StateClosed:
					open.Add(-1)
				}
			}}
		go s.Serve(ln)
	} else {
		s := &http.Server{IdleTimeout: time.Minute,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { deep(*depth); io.WriteString(w, "ok") }),
			ConnState: func(_ net.Conn, st http.ConnState) {
				switch st {
				case http.StateNew:
					open.Add(1)
				case http.StateIdle:
					idle.Add(1)
				case http.StateClosed:
					open.Add(-1)
				}
			}}
		go s.Serve(ln)
	}
	conns := dialAll(ln.Addr().String(), *n)
	for idle.Load() < int64(*n) { // every worker back to waiting for a request
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	runtime.GC()
	stacks, rss, peak := memory()
	fmt.Printf("%s GODEBUG=%q: %d idle: stacks %.1f MiB, RSS %.1f MiB, peak %.1f MiB;", *mode, os.Getenv("GODEBUG"), *n, stacks, rss, peak)
	for _, c := range conns {
		c.Close()
	}
	for open.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	stacksAfter, rssAfter, peakAfter := memory()
	fmt.Printf(" closed, one GC: stacks %.1f MiB, RSS %.1f MiB, peak %.1f MiB (%+.1f)\n", stacksAfter, rssAfter, peakAfter, peakAfter-peak)
}

// deep uses about 300 bytes of stack a level.
//
//go:noinline
func deep(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%256])
}

// dialAll opens n connections to addr, 64 at a time, sends one request on
// each and reads its answer, so every connection is idle once it returns.
func dialAll(addr string, n int) []net.Conn {
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				log.Fatal(err)
			}
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				log.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			conns[i] = c
		}()
	}
	wg.Wait()
	return conns
}

// memory returns the stacks in use, VmRSS and VmHWM, in MiB.
func memory() (stacks, rss, peak float64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		var kb float64
		if f := strings.Fields(l); len(f) > 1 {
			fmt.Sscan(f[1], &kb)
			switch f[0] {
			case "VmRSS:":
				rss = kb / 1024
			case "VmHWM:":
				peak = kb / 1024
			}
		}
	}
	return float64(m.StackInuse) / (1 << 20), rss, peak
}
