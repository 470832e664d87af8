package app_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// nonLoopbackAddr is an address of this machine that is not loopback, so
// a test can reach a listener from a socket peer that is not loopback.
func nonLoopbackAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to call from; gateway's TestProtectedModeReadsTheSocketPeer covers the check")
	return ""
}

// answer is what call got back.
type answer struct {
	status int
	header http.Header
	body   string
}

// call sends one request and reads the whole answer.
func call(t *testing.T, method, rawURL string, headers map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// portOf is the port of a listener's address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Without a service token, /v1/* answers loopback clients only, like
// Redis's protected mode: a peer that is not loopback gets 403 naming the
// setting, whatever X-Forwarded-For claims, on whichever listener serves
// /v1 (listen without an upstream, admin_listen with one). With a token,
// anyone who sends it may call.
func TestServiceAPIWithoutTokenAnswersOnlyLoopback(t *testing.T) {
	remote := nonLoopbackAddr(t)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	upAddr := edgetest.Serve(t, up.Serve, up.Close)

	event := fmt.Sprintf(`{"time":%q,"method":"GET","path":"/x","status":200}`+"\n", time.Now().UTC().Format(time.RFC3339))
	calls := []struct{ method, path, body string }{
		{"POST", "/v1/check", `{"method":"GET","path":"/api/x"}`},
		{"GET", "/v1/authorize", ""},
		{"POST", "/v1/events", event},
	}
	for _, mode := range []string{"forward auth", "forward auth on fasthttp", "proxy"} {
		for _, token := range []string{"", "service-token-0123456789abcdef"} {
			t.Run(fmt.Sprintf("%s, token %q", mode, token), func(t *testing.T) {
				a, _ := startApp(t, func(c *config.Config) {
					c.Server.Listen, c.Server.AdminListen = "0.0.0.0:0", "0.0.0.0:0"
					c.Security.ServiceToken = config.Secret(token)
					switch mode {
					case "proxy":
						c.Proxy.Upstream = "http://" + upAddr
					case "forward auth":
						c.Server.Edge = config.EdgeNetHTTP
					case "forward auth on fasthttp":
						c.Server.Edge = config.EdgeFastHTTP
					}
				})
				port := portOf(t, a.Addr())
				if mode == "proxy" {
					port = portOf(t, a.AdminAddr())
				}
				for _, c := range calls {
					for _, host := range []string{"127.0.0.1", remote} {
						for _, forwarded := range []string{"", "127.0.0.1"} {
							h := map[string]string{"Content-Type": "application/json", "X-Forwarded-For": forwarded}
							if token != "" {
								h["X-Apiwarden-Token"] = token
							}
							got := call(t, c.method, "http://"+net.JoinHostPort(host, port)+c.path, h, c.body)
							where := fmt.Sprintf("%s %s from %s (X-Forwarded-For %q)", c.method, c.path, host, forwarded)
							refused := got.status == 403 && strings.Contains(got.body, `"FORBIDDEN"`) &&
								strings.Contains(got.body, "security.service_token")
							if want := token == "" && host == remote; refused != want {
								t.Errorf("%s: %d %s; want refused %v", where, got.status, got.body, want)
							}
						}
					}
				}
			})
		}
	}
}
