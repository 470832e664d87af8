package gateway

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A header value apiwarden adds (an owner id from the admin API) cannot
// start a header of its own in the request written upstream.
func TestWriteRequestCannotBeSplit(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	pc := &upstreamConn{Conn: client, bw: bufio.NewWriter(client)}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Apiwarden-Owner", "org\r\nX-Injected: yes")
	go func() {
		if err := writeRequest(pc, r, "/x"); err != nil {
			t.Error(err)
		}
	}()
	got, err := http.ReadRequest(bufio.NewReader(server))
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("X-Injected") != "" || got.Header.Get("X-Apiwarden-Owner") != "org  X-Injected: yes" {
		t.Fatalf("headers upstream: %v", got.Header)
	}
}
