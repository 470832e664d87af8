package main

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// seen is what the upstream was sent: one entry a request.
type seen struct {
	header http.Header
	host   string
	remote string
	body   []byte
}

// upstream starts a real upstream on loopback that records each request
// and answers "hello\n", or echoes a POST's body.
func upstream(t *testing.T) (addr string, requests func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var all []seen
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		all = append(all, seen{header: r.Header.Clone(), host: r.Host, remote: r.RemoteAddr, body: body})
		mu.Unlock()
		w.Header().Set("X-Request-Id", "upstream-id") // the floor sets its own
		if r.Method == http.MethodPost {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
			return
		}
		w.Header().Set("Content-Length", "6")
		io.WriteString(w, "hello\n")
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String(), func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), all...)
	}
}

func startFloor(t *testing.T, upstreamAddr string) string {
	t.Helper()
	s, err := Start("127.0.0.1:0", upstreamAddr, 2, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addr()
}

// TestContractHeaders sends the benchmark's request through the floor and
// checks the upstream got the contract's request headers and the client
// the contract's answer headers, three times on one keep-alive connection
// served by one upstream connection.
func TestContractHeaders(t *testing.T) {
	upAddr, requests := upstream(t)
	addr := startFloor(t, upAddr)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	var ids []string
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/forms?x=1", nil)
		req.Header.Set("X-API-Key", "k0000000000000000000000000000500")
		req.Header.Set("Authorization", "Bearer k0000000000000000000000000000500")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello\n" {
			t.Fatalf("answer %d %q, want 200 \"hello\\n\"", resp.StatusCode, body)
		}
		id := resp.Header.Get("X-Request-Id")
		if !strings.HasPrefix(id, requestIDPrefix) || len(resp.Header.Values("X-Request-Id")) != 1 {
			t.Errorf("answer's X-Request-Id %q, want one of prefix %q", resp.Header.Values("X-Request-Id"), requestIDPrefix)
		}
		ids = append(ids, id)
		for name, want := range map[string]string{
			"Ratelimit-Policy":      ratelimitPolicy,
			"Ratelimit":             `"minute";r=59999999999;t=1`,
			"X-Ratelimit-Limit":     "60000000000",
			"X-Ratelimit-Remaining": "59999999999",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("answer's %s = %q, want %q", name, got, want)
			}
		}
		if reset, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err != nil || reset < 1e9 {
			t.Errorf("answer's X-Ratelimit-Reset = %q, want a Unix time", resp.Header.Get("X-Ratelimit-Reset"))
		}
	}
	got := requests()
	if len(got) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(got))
	}
	for i, r := range got {
		if r.remote != got[0].remote {
			t.Errorf("request %d came on upstream connection %s, the first on %s: want one kept alive", i, r.remote, got[0].remote)
		}
		if r.host != addr {
			t.Errorf("upstream's Host %q, want the client's %q", r.host, addr)
		}
		for _, gone := range []string{"X-Api-Key", "Authorization"} {
			if v := r.header.Values(gone); len(v) != 0 {
				t.Errorf("upstream got %s %q, want it removed", gone, v)
			}
		}
		for name, want := range map[string]string{
			"X-Apiwarden-Tier":   "unlimited",
			"X-Forwarded-For":    "127.0.0.1",
			"X-Forwarded-Host":   addr,
			"X-Forwarded-Proto":  "http",
			"X-Apiwarden-Key-Id": keyID,
			"X-Request-Id":       ids[i],
		} {
			if v := r.header.Values(name); len(v) != 1 || v[0] != want {
				t.Errorf("upstream's %s = %q, want %q", name, v, want)
			}
		}
	}
	if ids[0] == ids[1] || ids[1] == ids[2] {
		t.Errorf("request ids %q repeat", ids)
	}
}

// TestBodiesAndHead sends, on one connection, a POST whose body spans many
// reads (echoed back), a HEAD (an answer with a Content-Length and no
// body) and a GET, pipelined in one write.
func TestBodiesAndHead(t *testing.T) {
	upAddr, requests := upstream(t)
	addr := startFloor(t, upAddr)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	var out bytes.Buffer
	out.WriteString("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n")
	out.Write(big)
	out.WriteString("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
	go conn.Write(out.Bytes())
	br := bufio.NewReader(conn)
	for _, want := range []struct {
		method string
		body   []byte
	}{{"POST", big}, {"HEAD", nil}, {"GET", []byte("hello\n")}} {
		resp, err := http.ReadResponse(br, &http.Request{Method: want.method})
		if err != nil {
			t.Fatalf("%s: %v", want.method, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, want.body) {
			t.Fatalf("%s: %d, %d bytes (%v), want 200 and %d bytes", want.method, resp.StatusCode, len(body), err, len(want.body))
		}
	}
	if got := requests(); len(got) != 3 || !bytes.Equal(got[0].body, big) {
		t.Fatalf("upstream saw %d requests, want 3 with the POST's body whole", len(got))
	}
}

// TestRefusals checks what the floor does not carry is answered, not
// forwarded: a chunked body (501), and any request when the upstream is
// down (502).
func TestRefusals(t *testing.T) {
	upAddr, requests := upstream(t)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	for _, tc := range []struct {
		name, upstream, request string
		status                  int
	}{
		{"chunked", upAddr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", 501},
		{"malformed", upAddr, "GET /\r\n\r\n", 400},
		{"upstream down", downAddr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", startFloor(t, tc.upstream))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, tc.request)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || !resp.Close {
				t.Errorf("answer %d (close %v), want %d and Connection: close", resp.StatusCode, resp.Close, tc.status)
			}
		})
	}
	if got := requests(); len(got) != 0 {
		t.Errorf("upstream saw %d requests, want none", len(got))
	}
}
