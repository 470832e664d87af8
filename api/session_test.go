package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// clock is a settable time source for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type sessionFixture struct {
	http  *httptest.Server
	keys  *keys.Service
	clock *clock
}

func newSessionFixture(t *testing.T, token string, opts admin.DashboardOptions) *sessionFixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	svc, err := keys.New(keys.Options{
		Store:  storetest.MustOpen(t),
		Secret: []byte("fixture-secret-fixture-secret"),
		Policy: keys.Policy{Tiers: []string{"basic", "free"}, DefaultTier: "free",
			Scopes: []string{"forms:read"}, GracePeriod: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	srv := api.New(api.Options{Gateway: gateway.Options{Keys: svc}, Admin: admin.Options{AdminToken: token, Keys: svc, Dashboard: opts}, Now: clk.Now})
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	return &sessionFixture{http: hs, keys: svc, clock: clk}
}

// request sends one call; cookie and csrf are added when not empty.
func (f *sessionFixture) request(t *testing.T, method, path, body, cookie, csrf string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: cookie})
	}
	if csrf != "" {
		req.Header.Set(admin.CSRFHeader, csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

type loginAnswer struct {
	Actor     string    `json:"actor"`
	CSRFToken string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// login logs in and returns the cookie value and the CSRF token.
func (f *sessionFixture) login(t *testing.T) (cookie, csrf string) {
	t.Helper()
	resp, body := f.request(t, "POST", "/admin/v1/session", `{"token":"`+adminToken+`"}`, "", "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var a loginAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == admin.SessionCookie {
			return c.Value, a.CSRFToken
		}
	}
	t.Fatal("login set no session cookie")
	return "", ""
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, RequestID string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an error body: %s", body)
	}
	return e.Error.Code
}

func TestLogin(t *testing.T) {
	f := newSessionFixture(t, adminToken, admin.DashboardOptions{SessionTTL: 2 * time.Hour})
	cases := []struct {
		name   string
		body   string
		hdr    []string
		status int
		code   string
	}{
		{"wrong token", `{"token":"nope"}`, nil, 401, "UNAUTHORIZED"},
		{"token with one extra character", `{"token":"` + adminToken + `x"}`, nil, 401, "UNAUTHORIZED"},
		{"no token", `{}`, nil, 401, "UNAUTHORIZED"},
		{"empty body", ``, nil, 401, "UNAUTHORIZED"},
		{"unknown field", `{"token":"` + adminToken + `","remember":true}`, nil, 400, "INVALID_JSON"},
		{"wrong bearer", `{}`, []string{"Authorization", "Bearer nope"}, 401, "UNAUTHORIZED"},
		{"right token", `{"token":"` + adminToken + `"}`, nil, 201, ""},
		{"right bearer", ``, []string{"Authorization", "Bearer " + adminToken}, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.request(t, "POST", "/admin/v1/session", tc.body, "", "", tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" {
				if got := errorCode(t, body); got != tc.code {
					t.Fatalf("code %s, want %s", got, tc.code)
				}
				if len(resp.Cookies()) != 0 {
					t.Fatal("a failed login set a cookie")
				}
				return
			}
			var a loginAnswer
			if err := json.Unmarshal(body, &a); err != nil || len(a.CSRFToken) < 40 || a.Actor != "dashboard" {
				t.Fatalf("answer %s (%v)", body, err)
			}
			if !a.ExpiresAt.Equal(f.clock.Now().Add(2 * time.Hour)) {
				t.Fatalf("expires_at %v, want login time + session_ttl", a.ExpiresAt)
			}
			if strings.Contains(string(body), adminToken) {
				t.Fatal("the answer repeats the admin token")
			}
			cookies := resp.Cookies()
			if len(cookies) != 1 {
				t.Fatalf("%d cookies", len(cookies))
			}
			c := cookies[0]
			if c.Name != admin.SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" ||
				c.MaxAge != 7200 || c.Secure || len(c.Value) < 40 || c.Value == a.CSRFToken {
				t.Fatalf("cookie %+v", c)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("headers %v", resp.Header)
			}
		})
	}
}

func TestLoginCookieIsSecureBehindTLS(t *testing.T) {
	f := newSessionFixture(t, adminToken, admin.DashboardOptions{})
	resp, body := f.request(t, "POST", "/admin/v1/session", `{"token":"`+adminToken+`"}`, "", "", "X-Forwarded-Proto", "https")
	if resp.StatusCode != 201 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	c := resp.Cookies()[0]
	if !c.Secure || c.MaxAge != int((12*time.Hour).Seconds()) {
		t.Fatalf("cookie %+v: want Secure and the 12h default", c)
	}
}

func TestLoginWithoutConfiguredToken(t *testing.T) {
	f := newSessionFixture(t, "", admin.DashboardOptions{})
	resp, body := f.request(t, "POST", "/admin/v1/session", `{"token":"anything"}`, "", "")
	if resp.StatusCode != 401 || errorCode(t, body) != "ADMIN_TOKEN_NOT_CONFIGURED" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestSessionAuthorizesAdminCalls(t *testing.T) {
	f := newSessionFixture(t, adminToken, admin.DashboardOptions{})
	cookie, csrf := f.login(t)
	other, otherCSRF := f.login(t)
	if cookie == other || csrf == otherCSRF {
		t.Fatal("two logins share a session or a CSRF token")
	}
	create := `{"name":"from the dashboard","tier":"free"}`
	cases := []struct {
		name, method, path, body, cookie, csrf string
		hdr                                    []string
		status                                 int
		code                                   string
	}{
		{"read with the cookie", "GET", "/admin/v1/keys", "", cookie, "", nil, 200, ""},
		{"read the session", "GET", "/admin/v1/session", "", cookie, "", nil, 200, ""},
		{"unknown cookie", "GET", "/admin/v1/keys", "", "forged-session-id", "", nil, 401, "UNAUTHORIZED"},
		{"change without CSRF", "POST", "/admin/v1/keys", create, cookie, "", nil, 403, "FORBIDDEN"},
		{"change with a wrong CSRF", "POST", "/admin/v1/keys", create, cookie, csrf + "x", nil, 403, "FORBIDDEN"},
		{"change with another session's CSRF", "POST", "/admin/v1/keys", create, cookie, otherCSRF, nil, 403, "FORBIDDEN"},
		{"revoke without CSRF", "DELETE", "/admin/v1/keys/key_x", "", cookie, "", nil, 403, "FORBIDDEN"},
		{"logout without CSRF", "POST", "/admin/v1/session/logout", "", cookie, "", nil, 403, "FORBIDDEN"},
		{"bearer wins over a bad cookie", "GET", "/admin/v1/keys", "", "forged", "", []string{"Authorization", "Bearer " + adminToken}, 200, ""},
		{"a bad bearer is not rescued by a good cookie", "GET", "/admin/v1/keys", "", cookie, "", []string{"Authorization", "Bearer nope"}, 401, "UNAUTHORIZED"},
		{"change with CSRF", "POST", "/admin/v1/keys", create, cookie, csrf, nil, 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.request(t, tc.method, tc.path, tc.body, tc.cookie, tc.csrf, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.code != "" && errorCode(t, body) != tc.code {
				t.Fatalf("code %s, want %s", errorCode(t, body), tc.code)
			}
		})
	}

	// Exactly one key was made, and its audit actor is the dashboard.
	list, _, err := f.keys.List(keys.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("%d keys (%v), want 1", len(list), err)
	}
	events, _, err := f.keys.Events(list[0].ID, "", 10)
	if err != nil || len(events) == 0 || events[0].Actor != "dashboard" {
		t.Fatalf("events %+v (%v): want actor dashboard", events, err)
	}

	// The session route hands a reloaded page its CSRF token back.
	_, body := f.request(t, "GET", "/admin/v1/session", "", cookie, "")
	var a loginAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.CSRFToken != csrf {
		t.Fatalf("session answer %s", body)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	f := newSessionFixture(t, adminToken, admin.DashboardOptions{})
	cookie, csrf := f.login(t)
	other, _ := f.login(t)
	resp, body := f.request(t, "POST", "/admin/v1/session/logout", "", cookie, csrf)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout %d %s", resp.StatusCode, body)
	}
	cleared := resp.Cookies()
	if len(cleared) != 1 || cleared[0].MaxAge >= 0 || cleared[0].Value != "" || !cleared[0].HttpOnly {
		t.Fatalf("logout cookie %+v: want it cleared", cleared)
	}
	for _, path := range []string{"/admin/v1/keys", "/admin/v1/session"} {
		resp, body = f.request(t, "GET", path, "", cookie, "")
		if resp.StatusCode != 401 || errorCode(t, body) != "UNAUTHORIZED" {
			t.Fatalf("%s after logout: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := f.request(t, "GET", "/admin/v1/keys", "", other, ""); resp.StatusCode != 200 {
		t.Fatalf("another session ended too: %d", resp.StatusCode)
	}
}

func TestSessionExpires(t *testing.T) {
	f := newSessionFixture(t, adminToken, admin.DashboardOptions{SessionTTL: time.Hour})
	cookie, _ := f.login(t)
	steps := []struct {
		advance time.Duration
		status  int
	}{
		{0, 200},
		{59 * time.Minute, 200},
		{59*time.Second + 999*time.Millisecond, 200},
		{time.Millisecond, 401}, // exactly at expiry
		{-time.Hour, 401},       // an expired session stays gone
	}
	for i, st := range steps {
		f.clock.Add(st.advance)
		resp, body := f.request(t, "GET", "/admin/v1/keys", "", cookie, "")
		if resp.StatusCode != st.status {
			t.Fatalf("step %d: status %d, want %d: %s", i, resp.StatusCode, st.status, body)
		}
		if st.status == 401 && !strings.Contains(string(body), "log in again") {
			t.Fatalf("step %d: the message does not say what to do: %s", i, body)
		}
	}
}

func TestSessionsAreBounded(t *testing.T) {
	f := newSessionFixture(t, adminToken, admin.DashboardOptions{MaxSessions: 2})
	first, _ := f.login(t)
	f.clock.Add(time.Second)
	second, _ := f.login(t)
	f.clock.Add(time.Second)
	third, _ := f.login(t)
	for _, c := range []struct {
		cookie string
		status int
	}{{first, 401}, {second, 200}, {third, 200}} {
		if resp, _ := f.request(t, "GET", "/admin/v1/keys", "", c.cookie, ""); resp.StatusCode != c.status {
			t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
		}
	}
}
