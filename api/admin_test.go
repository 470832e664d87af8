package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/api"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

const adminToken = "test-admin-token"

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	srv  *api.Server
	http *httptest.Server
	keys *keys.Service
	logs *syncBuffer
}

func newFixture(t *testing.T, token string, tweak ...func(*api.Options)) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := keys.New(keys.Options{
		Store:  storetest.MustOpen(t),
		Secret: []byte("fixture-secret-fixture-secret"),
		Policy: keys.Policy{Tiers: []string{"basic", "free"}, DefaultTier: "free",
			Scopes: []string{"forms:read", "forms:write", "admin"}, GracePeriod: time.Hour},
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	opts := api.Options{Gateway: gateway.Options{Keys: svc}, Admin: admin.Options{AdminToken: token, Keys: svc, Version: "test"}, Logger: log}
	for _, f := range tweak {
		f(&opts)
	}
	srv := api.New(opts)
	srv.Admin().SetReady(true)
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	return &fixture{srv: srv, http: hs, keys: svc, logs: logs}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) call(t *testing.T, method, path, token, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, f.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func (f *fixture) admin(t *testing.T, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	ct := ""
	if body != nil {
		b, _ := json.Marshal(body)
		rd, ct = bytes.NewReader(b), "application/json"
	}
	return f.call(t, method, path, adminToken, ct, rd)
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("status %d, body %s: %v", r.status, r.body, err)
	}
	return v
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// checkError asserts the error body with the status and code expected.
func checkError(t *testing.T, r response, status int, code string) errorBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	e := decode[errorBody](t, r)
	if e.Error.Code != code || e.Error.Message == "" || e.Error.RequestID == "" {
		t.Fatalf("error body %s, want code %s with a message and request id", r.body, code)
	}
	if e.Error.RequestID != r.header.Get("X-Request-Id") {
		t.Fatalf("request id %q differs from header %q", e.Error.RequestID, r.header.Get("X-Request-Id"))
	}
	return e
}

type keyAndSecret struct {
	Key    keys.Key `json:"key"`
	Secret string   `json:"secret"`
}

func TestKeyLifecycleThroughAdminAPI(t *testing.T) {
	f := newFixture(t, adminToken)

	r := f.admin(t, "POST", "/admin/v1/keys", map[string]any{
		"name": "planner", "owner_id": "org_9", "tier": "basic", "scopes": []string{"forms:read"},
		"allowed_ips": []string{"10.0.0.0/8"}, "meta": map[string]string{"crm": "42"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := decode[keyAndSecret](t, r)
	k := created.Key
	if k.ID == "" || created.Secret == "" || k.Status != "active" || k.OwnerID != "org_9" || k.Meta["crm"] != "42" {
		t.Fatalf("created %s", r.body)
	}
	if r.header.Get("Location") != "/admin/v1/keys/"+k.ID {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	if strings.Contains(string(f.admin(t, "GET", "/admin/v1/keys/"+k.ID, nil).body), created.Secret) {
		t.Fatal("GET shows the secret")
	}

	// Show, list, patch.
	if got := decode[keys.Key](t, f.admin(t, "GET", "/admin/v1/keys/"+k.ID, nil)); got.ID != k.ID || got.Tier != "basic" {
		t.Fatalf("show: %+v", got)
	}
	list := decode[struct {
		Keys       []keys.Key `json:"keys"`
		NextCursor string     `json:"next_cursor"`
	}](t, f.admin(t, "GET", "/admin/v1/keys?owner_id=org_9&status=active", nil))
	if len(list.Keys) != 1 || list.Keys[0].ID != k.ID || list.NextCursor != "" {
		t.Fatalf("list: %+v", list)
	}
	patched := decode[keys.Key](t, f.admin(t, "PATCH", "/admin/v1/keys/"+k.ID, map[string]any{
		"scopes": []string{"forms:read", "forms:write"}, "expires_at": time.Now().Add(time.Hour)}))
	if len(patched.Scopes) != 2 || patched.ExpiresAt == nil {
		t.Fatalf("patch: %+v", patched)
	}
	cleared := decode[keys.Key](t, f.admin(t, "PATCH", "/admin/v1/keys/"+k.ID, map[string]any{"expires_at": nil}))
	if cleared.ExpiresAt != nil || len(cleared.Scopes) != 2 {
		t.Fatalf("patch expires_at null: %+v", cleared)
	}

	// Rotate with a grace period: both secrets verify, the id stays.
	r = f.admin(t, "POST", "/admin/v1/keys/"+k.ID+"/rotate", map[string]string{"grace_period": "30m"})
	rotated := decode[keyAndSecret](t, r)
	if r.status != 200 || rotated.Key.ID != k.ID || rotated.Secret == created.Secret || rotated.Key.GraceUntil == nil {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	for _, s := range []string{created.Secret, rotated.Secret} {
		if _, err := f.keys.Verify(time.Now(), s); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}

	// Revoke: in force for the next verification.
	r = f.admin(t, "DELETE", "/admin/v1/keys/"+k.ID, map[string]string{"reason": "customer churned"})
	if r.status != 200 || decode[keys.Key](t, r).Status != "revoked" {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if _, err := f.keys.Verify(time.Now(), rotated.Secret); err != keys.ErrRevoked {
		t.Fatalf("verify after revoke: %v", err)
	}
	checkError(t, f.admin(t, "DELETE", "/admin/v1/keys/"+k.ID, nil), 409, "CONFLICT")

	// The audit trail, newest first.
	events := decode[struct {
		Events []keys.Event `json:"events"`
	}](t, f.admin(t, "GET", "/admin/v1/keys/"+k.ID+"/events", nil))
	var types []string
	for _, e := range events.Events {
		types = append(types, string(e.Type))
	}
	if got := strings.Join(types, ","); got != "revoked,rotated,updated,updated,created" {
		t.Fatalf("events %s", got)
	}

	// Secrets never reach the log.
	for _, s := range []string{created.Secret, rotated.Secret} {
		if strings.Contains(f.logs.String(), s[4:]) {
			t.Fatal("a secret appears in the log")
		}
	}
}

// Every admin route refuses a request without the token. The routes come
// from the server's own table, so a route added later is covered too.
func TestEveryAdminRouteNeedsTheToken(t *testing.T) {
	// Dozens of wrong tokens from one address: the throttle would lock it
	// out (429) before the last route; this test is about the 401s.
	f := newFixture(t, adminToken, func(o *api.Options) { o.Admin.AuthFailureLimit = -1 })
	param := regexp.MustCompile(`:[a-z_]+|\*[a-z_]+`)
	n := 0
	for _, rt := range f.srv.Admin().Routes() {
		if !strings.HasPrefix(rt.Path, "/admin/") {
			continue
		}
		n++
		path := param.ReplaceAllString(rt.Path, "key_x")
		for _, token := range []string{"", "wrong-token", adminToken + "x"} {
			r := f.call(t, rt.Method, path, token, "application/json", strings.NewReader("{}"))
			checkError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
		}
	}
	if n < 7 {
		t.Fatalf("only %d admin routes enumerated", n)
	}
}

func TestAdminDisabledWithoutConfiguredToken(t *testing.T) {
	f := newFixture(t, "")
	for _, rt := range f.srv.Admin().Routes() {
		if !strings.HasPrefix(rt.Path, "/admin/") {
			continue
		}
		r := f.call(t, rt.Method, strings.ReplaceAll(rt.Path, ":id", "x"), "anything", "", nil)
		e := checkError(t, r, http.StatusUnauthorized, "ADMIN_TOKEN_NOT_CONFIGURED")
		if !strings.Contains(e.Error.Message, "APIWARDEN_ADMIN_TOKEN") {
			t.Fatalf("message does not say how to enable it: %q", e.Error.Message)
		}
	}
}

func TestBadRequestBodies(t *testing.T) {
	f := newFixture(t, adminToken)
	cases := []struct {
		name, contentType, body string
		status                  int
		code, mentions          string
	}{
		{"malformed", "application/json", `{"tier": "free",`, 400, "INVALID_JSON", "malformed JSON"},
		{"not an object", "application/json", `[1,2]`, 400, "INVALID_JSON", "object"},
		{"unknown field", "application/json", `{"tier":"free","colour":"blue"}`, 400, "INVALID_JSON", `"colour"`},
		{"wrong type", "application/json", `{"tier":"free","scopes":"forms:read"}`, 400, "INVALID_JSON", `"scopes"`},
		{"trailing data", "application/json", `{"tier":"free"} {"tier":"free"}`, 400, "INVALID_JSON", "after the JSON"},
		{"empty", "application/json", ``, 400, "INVALID_JSON", "empty"},
		{"wrong content type", "text/plain", `{"tier":"free"}`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"oversized", "application/json", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "PAYLOAD_TOO_LARGE", "larger than"},
		{"invalid value", "application/json", `{"tier":"gold"}`, 400, "INVALID_REQUEST", `"gold"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, "POST", "/admin/v1/keys", adminToken, tc.contentType, strings.NewReader(tc.body))
			e := checkError(t, r, tc.status, tc.code)
			if !strings.Contains(e.Error.Message, tc.mentions) {
				t.Fatalf("message %q does not mention %q", e.Error.Message, tc.mentions)
			}
		})
	}
	// Nothing was created by any of them.
	if keys, _, _ := f.keys.List(keys.Filter{}); len(keys) != 0 {
		t.Fatalf("%d keys created by bad requests", len(keys))
	}
}

func TestBadParametersAndUnknownThings(t *testing.T) {
	f := newFixture(t, adminToken)
	checkError(t, f.admin(t, "GET", "/admin/v1/keys/key_nope", nil), 404, "RESOURCE_NOT_FOUND")
	checkError(t, f.admin(t, "GET", "/admin/v1/keys?limit=0", nil), 400, "INVALID_PARAMETER")
	checkError(t, f.admin(t, "GET", "/admin/v1/keys?status=sleeping", nil), 400, "INVALID_PARAMETER")
	checkError(t, f.admin(t, "GET", "/admin/v1/keys?onwer_id=x", nil), 400, "INVALID_PARAMETER")
	checkError(t, f.admin(t, "GET", "/admin/v1/keys?cursor=zzz", nil), 400, "INVALID_PARAMETER")
	checkError(t, f.admin(t, "GET", "/admin/v1/nothing", nil), 404, "ROUTE_NOT_FOUND")
	checkError(t, f.admin(t, "PUT", "/admin/v1/keys", nil), 405, "METHOD_NOT_ALLOWED")
	checkError(t, f.admin(t, "POST", "/admin/v1/keys/key_nope/rotate", map[string]string{"grace_period": "soon"}), 400, "INVALID_REQUEST")
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t, adminToken)
	if r := f.call(t, "GET", "/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	if r := f.call(t, "GET", "/readyz", "", "", nil); r.status != 200 {
		t.Fatalf("readyz %d", r.status)
	}
	f.srv.Admin().SetReady(false)
	checkError(t, f.call(t, "GET", "/readyz", "", "", nil), 503, "UNAVAILABLE")
}

func TestRequestIDIsKeptOrMade(t *testing.T) {
	f := newFixture(t, adminToken)
	req, _ := http.NewRequest("GET", f.http.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "trace-abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-abc-123" {
		t.Fatalf("request id %q, want the caller's", got)
	}
	req.Header.Set("X-Request-Id", "bad id with spaces")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Fatalf("request id %q, want a generated one", got)
	}
}

func TestBackupRoute(t *testing.T) {
	st := storetest.MustOpen(t)
	srv := api.New(api.Options{Admin: admin.Options{AdminToken: adminToken, Backup: st}})
	hs := httptest.NewServer(srv.AdminHandler())
	defer hs.Close()
	f := &fixture{http: hs}
	r := f.admin(t, "GET", "/admin/v1/backup", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/octet-stream" || len(r.body) == 0 {
		t.Fatalf("backup: %d %v", r.status, r.header)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Fatalf("Content-Length %q for %d bytes", cl, len(r.body))
	}
	checkError(t, f.call(t, "GET", "/admin/v1/backup", "", "", nil), 401, "UNAUTHORIZED")
}

// Past the limit, wrong admin tokens from one address are answered 429
// with Retry-After until the window ends; the right token is never
// refused, on the API or at the dashboard's login.
func TestAdminTokenGuessingIsThrottled(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	f := newFixture(t, adminToken, func(o *api.Options) {
		o.Admin.AuthFailureLimit, o.Admin.AuthFailureWindow, o.Now = 5, time.Minute, clock
	})
	for range 5 {
		checkError(t, f.call(t, "GET", "/admin/v1/keys", "guess", "", nil), 401, "UNAUTHORIZED")
	}
	now.Add(int64(20 * time.Second))
	r := f.call(t, "GET", "/admin/v1/keys", "guess", "", nil)
	checkError(t, r, 429, "TOO_MANY_ATTEMPTS")
	if got := r.header.Get("Retry-After"); got != "40" {
		t.Errorf("Retry-After %q, want 40, the seconds left of the window", got)
	}
	if r := f.call(t, "GET", "/admin/v1/keys", adminToken, "", nil); r.status != 200 {
		t.Fatalf("right token past the limit: %d %s", r.status, r.body)
	}
	login := f.call(t, "POST", "/admin/v1/session", "", "application/json", strings.NewReader(`{"token":"`+adminToken+`"}`))
	if login.status != 201 {
		t.Fatalf("login with the right token past the limit: %d %s", login.status, login.body)
	}
	checkError(t, f.call(t, "POST", "/admin/v1/session", "", "application/json", strings.NewReader(`{"token":"guess"}`)),
		429, "TOO_MANY_ATTEMPTS")
	if !strings.Contains(f.logs.String(), "wrong admin tokens keep coming from one client") {
		t.Errorf("crossing the limit was not logged:\n%s", f.logs.String())
	}
	now.Add(int64(40 * time.Second))
	checkError(t, f.call(t, "GET", "/admin/v1/keys", "guess", "", nil), 401, "UNAUTHORIZED")
}
