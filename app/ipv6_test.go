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
		r := call(t, "GET", "http://"+a.Addr()+"/public/x", map[string]string{"X-Forwarded-For": fmt.Sprintf("2001:db8:1:2::%x", i+1)}, "")
		statuses[r.status]++
	}
	if statuses[200] != 10 || statuses[429] != 20 || reached.Load() != 10 {
		t.Errorf("30 requests from 30 addresses of one /64: statuses %v, %d reached the app; want 10 passed, 20 limited",
			statuses, reached.Load())
	}
	if r := call(t, "GET", "http://"+a.Addr()+"/public/x", map[string]string{"X-Forwarded-For": "2001:db8:1:3::1"}, ""); r.status != 200 {
		t.Fatalf("the next /64 is another client: %d %s", r.status, r.body)
	}

	statuses = map[int]int{}
	for i := range 30 {
		r := call(t, "GET", "http://"+a.AdminAddr()+"/admin/v1/keys", map[string]string{
			"Authorization": "Bearer wrong-admin-token", "X-Forwarded-For": fmt.Sprintf("2001:db8:1:2:%x::1", i+1)}, "")
		if r.status == 429 && !strings.Contains(r.body, "TOO_MANY_ATTEMPTS") {
			t.Fatalf("429 %s", r.body)
		}
		statuses[r.status]++
	}
	if statuses[401] != 20 || statuses[429] != 10 {
		t.Errorf("30 wrong admin tokens from 30 addresses of one /64: statuses %v; want 20 answered 401, then 429", statuses)
	}
}
