package main

import "testing"

// A proxied request through the real binary, in its default
// configuration (the fasthttp edge, the live analytics, the record, the
// response_header_timeout), fits in a 4 KiB goroutine stack: each
// keep-alive connection's fasthttp worker, answered once and left idle,
// holds about 4 KiB of stack, not the 8 KiB it keeps once a request grew
// it (docs/BENCHMARKS.md, "Stacks per connection on the fasthttp proxy").
// api/stack_test.go checks the gateway's path in-process; this one the
// product's, with its analytics. The connections are opened 64 at a time,
// as TestConnections opens them; the binary is built without the race
// detector, so this holds under -race too.
func TestProxyStacksPerIdleConnection(t *testing.T) {
	const n = 500
	raiseFileLimit(t, n)
	_, listen, admin, secret := startConnsProxy(t, buildBinary(t), "")
	request := []byte("GET /api/items/1 HTTP/1.1\r\nHost: " + listen + "\r\nX-API-Key: " + secret + "\r\n\r\n")
	const stacks = "go_memstats_stack_inuse_bytes"
	before := runtimeOf(t, admin)[stacks]
	var load connsLoad
	conns := dialAll(t, listen, n, func(c *connsConn) { load.exchange(c, request) })
	after := runtimeOf(t, admin)[stacks]
	for _, c := range conns {
		c.Close()
	}
	if f := load.failed.Load() + load.non2xx.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed or were refused", f, n)
	}
	perConn := (after - before) / n / 1024
	t.Logf("%.2f KiB of stacks per idle connection (%d connections)", perConn, n)
	if perConn > 6 {
		t.Errorf("%.2f KiB of stacks per idle connection; want about 4 (a worker grown to 8 KiB by its request)", perConn)
	}
}
