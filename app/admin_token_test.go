package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// testAdminToken is long enough for config validation's minimum.
const testAdminToken = "app-test-admin-token-0123456789"

// bearer is the header that presents token.
func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// Someone sharing the admins' address (one NAT, one corporate proxy)
// sends wrong admin tokens: the wrong ones are slowed down, but the right
// token keeps working, on the API and at the dashboard's login.
func TestWrongAdminTokensDoNotLockOutTheRightOne(t *testing.T) {
	a, _ := startApp(t, func(c *config.Config) { c.Security.AdminToken = testAdminToken })
	base := "http://" + a.AdminAddr()
	var refused int
	for i := range 30 {
		r := call(t, "GET", base+"/admin/v1/keys", bearer("wrong-token-"+strings.Repeat("x", i)), "")
		switch r.status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			refused++
			if r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "TOO_MANY_ATTEMPTS") {
				t.Fatalf("wrong token %d: 429 without Retry-After or code: %v %s", i, r.header, r.body)
			}
		default:
			t.Fatalf("wrong token %d: %d %s", i, r.status, r.body)
		}
	}
	if refused == 0 {
		t.Errorf("30 wrong tokens from one address were all answered 401: nothing slows guessing")
	}
	if r := call(t, "GET", base+"/admin/v1/keys", bearer(testAdminToken), ""); r.status != http.StatusOK {
		t.Fatalf("the right token after others' wrong ones: %d %s", r.status, r.body)
	}
	login := call(t, "POST", base+"/admin/v1/session", map[string]string{"Content-Type": "application/json"}, `{"token":"`+testAdminToken+`"}`)
	if login.status != http.StatusCreated {
		t.Fatalf("dashboard login with the right token after others' wrong ones: %d %s", login.status, login.body)
	}
}
