package fastedge

import (
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
)

// A panic in the proxy handler closes that request's connection, as on
// net/http, and the server goes on serving the next one; fasthttp alone
// would end the process.
func TestProxyPanicEndsOnlyItsConnection(t *testing.T) {
	up, _ := url.Parse("http://127.0.0.1:1")
	gw := gateway.New(gateway.Options{Proxy: gateway.ProxyOptions{Upstream: up}})
	panics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s := New(Options{Gateway: gw, Fallback: panics, MaxHeaderBytes: 8 << 10, ReadHeaderTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		<-served
	})
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/panic")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || !resp.Close {
			t.Fatalf("panic answered %d, close %v", resp.StatusCode, resp.Close)
		}
	}
	resp, err = client.Get("http://" + ln.Addr().String() + "/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("after the panic: %d", resp.StatusCode)
	}
}
