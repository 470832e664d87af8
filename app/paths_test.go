package app_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
)

// pathsEnv is the app in proxy mode in front of an upstream that records
// the request URIs it was sent.
type pathsEnv struct {
	app      *app.App
	mu       sync.Mutex
	received []string
}

// startPathsApp serves /api/admin/* (admin preset), /api/public/*
// (public) and everything else as protected, before mutate's changes.
func startPathsApp(t *testing.T, mutate func(*config.Config)) *pathsEnv {
	t.Helper()
	env := &pathsEnv{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.mu.Lock()
		env.received = append(env.received, r.Method+" "+r.RequestURI)
		env.mu.Unlock()
		io.WriteString(w, "served by the app")
	}))
	t.Cleanup(up.Close)
	env.app, _ = startApp(t, func(c *config.Config) {
		c.Proxy.Upstream = up.URL
		c.Routes = []config.Route{
			{Path: "/api/admin/*", Preset: "admin"},
			{Path: "/api/public/*", Preset: "public"},
		}
		if mutate != nil {
			mutate(c)
		}
	})
	return env
}

// createKey makes a key through the admin API and returns its secret.
func (e *pathsEnv) createKey(t *testing.T, params string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+e.app.AdminAddr()+"/admin/v1/keys", strings.NewReader(params))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating a key: status %d, %v", resp.StatusCode, err)
	}
	return created.Secret
}

// rawGet sends a request line exactly as written (no client library
// cleans or escapes it) and returns the status and the error code of the
// answer ("" when the body is not an error body).
func rawGet(t *testing.T, addr, method, target string, headers map[string]string) (status int, code string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n")
	for k, v := range headers {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, errorCode(resp.Body)
}

func errorCode(body io.Reader) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.NewDecoder(body).Decode(&e)
	return e.Error.Code
}

// HEAD is served by GET handlers, so it must meet a GET route's limits,
// not fall through to a looser route after it.
func TestHeadMeetsGetRouteLimits(t *testing.T) {
	env := startPathsApp(t, func(c *config.Config) {
		c.Routes = []config.Route{
			{Path: "/api/reports/*", Methods: []string{"GET"}, Preset: "protected", RequestsPerMinute: 3},
			{Path: "/api/*", Preset: "protected"},
		}
	})
	key := env.createKey(t, `{"name":"big","owner_id":"org_head","tier":"enterprise"}`)
	var got []int
	for _, method := range []string{"GET", "GET", "GET", "GET", "HEAD", "HEAD", "HEAD"} {
		status, _ := rawGet(t, env.app.Addr(), method, "/api/reports/1", map[string]string{"X-API-Key": key})
		got = append(got, status)
	}
	want := []int{200, 200, 200, 429, 429, 429, 429}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("GET ×4 then HEAD ×3 answered %v, want %v", got, want)
		}
	}
}
