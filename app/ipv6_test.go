package app_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// One host commonly holds a whole IPv6 /64: changing the address for
// each request must not give it a fresh per-IP bucket on a public route,
// nor a fresh count of wrong admin tokens. The client address comes from
// X-Forwarded-For, as behind a proxy on loopback (a trusted proxy by
// default).
func TestOneIPv6NetworkSharesItsLimits(t *testing.T) {
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	a, _ := startApp(t, func(c *config.Config) {
		c.Security.AdminToken = testAdminToken
		c.Proxy.Upstream = up.URL
		c.Routes = []config.Route{{Path: "/public/*", Preset: "public"}} // tier free: a burst of 10 a minute
		c.Calendar = nil                                                 // no Saturday or peak-season factor
	})

	statuses := map[int]int{}
	for i := range 30 {
		req, _ := http.NewRequest("GET", "http://"+a.Addr()+"/public/x", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("2001:db8:1:2::%x", i+1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	if statuses[200] != 10 || statuses[429] != 20 || reached.Load() != 10 {
		t.Errorf("30 requests from 30 addresses of one /64: statuses %v, %d reached the app; want 10 passed, 20 limited",
			statuses, reached.Load())
	}
	req, _ := http.NewRequest("GET", "http://"+a.Addr()+"/public/x", nil)
	req.Header.Set("X-Forwarded-For", "2001:db8:1:3::1")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the next /64 is another client: %v %v", resp.Status, err)
	}

	statuses = map[int]int{}
	for i := range 30 {
		req, _ := http.NewRequest("GET", "http://"+a.AdminAddr()+"/admin/v1/keys", nil)
		req.Header.Set("Authorization", "Bearer wrong-admin-token")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("2001:db8:1:2:%x::1", i+1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 429 && !strings.Contains(string(b), "TOO_MANY_ATTEMPTS") {
			t.Fatalf("429 %s", b)
		}
		statuses[resp.StatusCode]++
	}
	if statuses[401] != 20 || statuses[429] != 10 {
		t.Errorf("30 wrong admin tokens from 30 addresses of one /64: statuses %v; want 20 answered 401, then 429", statuses)
	}
}
