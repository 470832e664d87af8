package api

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCSVTextDefusesFormulas(t *testing.T) {
	cases := map[string]string{
		"/api/forms/1":             "/api/forms/1",
		"Mozilla/5.0":              "Mozilla/5.0",
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
		"+1+1":                     "'+1+1",
		"-2":                       "'-2",
		"@SUM(A1)":                 "'@SUM(A1)",
		"\tx":                      "'\tx",
		"":                         "",
	}
	for in, want := range cases {
		if got := csvText(in); got != want {
			t.Errorf("csvText(%q) = %q, want %q", in, got, want)
		}
	}
}

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
