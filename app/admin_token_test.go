package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// testAdminToken is long enough for config validation's minimum.
const testAdminToken = "app-test-admin-token-0123456789"

// adminCall sends one request to the admin listener with a bearer token.
func adminCall(t *testing.T, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Someone sharing the admins' address (one NAT, one corporate proxy)
// sends wrong admin tokens: the wrong ones are slowed down, but the right
// token keeps working, on the API and at the dashboard's login.
func TestWrongAdminTokensDoNotLockOutTheRightOne(t *testing.T) {
	a, _ := startApp(t, func(c *config.Config) { c.Security.AdminToken = testAdminToken })
	base := "http://" + a.AdminAddr()
	var refused int
	for i := range 30 {
		resp, body := adminCall(t, "GET", base+"/admin/v1/keys", "wrong-token-"+strings.Repeat("x", i), "")
		switch resp.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			refused++
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "TOO_MANY_ATTEMPTS") {
				t.Fatalf("wrong token %d: 429 without Retry-After or code: %v %s", i, resp.Header, body)
			}
		default:
			t.Fatalf("wrong token %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if refused == 0 {
		t.Errorf("30 wrong tokens from one address were all answered 401: nothing slows guessing")
	}
	if resp, body := adminCall(t, "GET", base+"/admin/v1/keys", testAdminToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the right token after others' wrong ones: %d %s", resp.StatusCode, body)
	}
	if resp, body := adminCall(t, "POST", base+"/admin/v1/session", "", `{"token":"`+testAdminToken+`"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("dashboard login with the right token after others' wrong ones: %d %s", resp.StatusCode, body)
	}
}
