package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// The nginx snippet of docs/integrations.md is tested as written: the test
// reads it from between its marker lines and replaces only these values,
// each of which must occur exactly once, so the document cannot drift from
// what runs here.
const (
	nginxDoc              = "../docs/integrations.md"
	nginxBeginMarker      = "# BEGIN nginx-test"
	nginxEndMarker        = "# END nginx-test"
	nginxDocApiwarden     = "127.0.0.1:8080"
	nginxDocApp           = "127.0.0.1:3000"
	nginxDocListen        = "listen 80;"
	nginxDocTokenFile     = "/etc/nginx/apiwarden-token.conf"
	nginxTestServiceToken = "nginx-test-service-token"
	nginxTestAdminToken   = "nginx-test-admin-token"
)

// TestNginxAuthRequest puts a real nginx, configured with the documented
// snippet, between a client and a small app, with apiwarden's
// /v1/authorize deciding every request.
//
// It needs the nginx binary (Debian: apt-get install nginx-light). Without
// one it skips, unless APIWARDEN_REQUIRE_NGINX=1, as CI sets it, turns the
// skip into a failure.
func TestNginxAuthRequest(t *testing.T) {
	nginx := nginxBinary(t)
	snippet := nginxSnippet(t)
	aw := nginxStartApiwarden(t)
	upstream := httptest.NewServer(http.HandlerFunc(nginxEchoApp))
	t.Cleanup(upstream.Close)
	base := nginxStart(t, nginx, snippet, aw.enforceAddr, upstream.Listener.Addr().String())

	premium := aw.createKey(t, `{"name":"nginx premium","owner_id":"org_nginx","tier":"premium","scopes":["forms:read","guests:read"]}`)
	tiny := aw.createKey(t, `{"name":"nginx tiny","owner_id":"org_tiny","tier":"tiny"}`)
	premiumNoScopes := aw.createKey(t, `{"name":"nginx no scopes","owner_id":"org_noscopes","tier":"premium"}`)
	client := &http.Client{Timeout: 10 * time.Second}

	t.Run("allowed with X-API-Key", func(t *testing.T) {
		resp, body := nginxDo(t, client, "GET", base+"/api/forms/1?page=2", map[string]string{
			"X-API-Key":          premium.Secret,
			"X-Apiwarden-Key-Id": "key_spoofed", // a client's own identity headers never count
			"X-Apiwarden-Owner":  "org_spoofed",
			"X-Apiwarden-Token":  "client-guess",
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
		}
		seen := nginxEchoed(t, body)
		nginxWantHeader(t, seen, "X-Apiwarden-Key-Id", premium.Key.ID)
		nginxWantHeader(t, seen, "X-Apiwarden-Owner", "org_nginx")
		nginxWantHeader(t, seen, "X-Apiwarden-Tier", "premium")
		nginxWantHeader(t, seen, "X-Apiwarden-Scopes", "forms:read,guests:read")
		nginxWantHeader(t, seen, "X-Api-Key", "")
		nginxWantHeader(t, seen, "X-Apiwarden-Token", "")
		if got := seen.Values("X-Request-Id"); len(got) != 1 || got[0] == "" {
			t.Errorf("the app got X-Request-Id %q, want apiwarden's one", got)
		}
		if got := seen.Get("X-Echo-Uri"); got != "/api/forms/1?page=2" {
			t.Errorf("the app saw %q, want the original URI", got)
		}
		for _, h := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("response lacks %s", h)
			}
		}
		if got := resp.Header.Get("X-RateLimit-Limit"); got != "100" {
			t.Errorf("X-RateLimit-Limit %q, want the premium burst 100", got)
		}
		if got := resp.Header.Get("Retry-After"); got != "" {
			t.Errorf("Retry-After %q on an allowed request", got)
		}
	})

	t.Run("key in Authorization is not passed on", func(t *testing.T) {
		resp, body := nginxDo(t, client, "POST", base+"/api/forms", map[string]string{"Authorization": "Bearer " + premium.Secret})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
		}
		seen := nginxEchoed(t, body)
		nginxWantHeader(t, seen, "Authorization", "")
		nginxWantHeader(t, seen, "X-Apiwarden-Key-Id", premium.Key.ID)
		nginxWantHeader(t, seen, "X-Echo-Method", "POST")
	})

	t.Run("the app's own Authorization survives beside X-API-Key", func(t *testing.T) {
		resp, body := nginxDo(t, client, "GET", base+"/api/forms", map[string]string{
			"X-API-Key": premium.Secret, "Authorization": "Bearer app-session-jwt",
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
		}
		nginxWantHeader(t, nginxEchoed(t, body), "Authorization", "Bearer app-session-jwt")
	})

	t.Run("public route: no key, no spoofed identity", func(t *testing.T) {
		resp, body := nginxDo(t, client, "GET", base+"/public/status", map[string]string{"X-Apiwarden-Key-Id": "key_spoofed"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
		}
		seen := nginxEchoed(t, body)
		nginxWantHeader(t, seen, "X-Apiwarden-Key-Id", "")
		nginxWantHeader(t, seen, "X-Apiwarden-Tier", "free")
	})

	denials := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		code    string
	}{
		{"missing key", "/api/forms/1", nil, 401, "MISSING_KEY"},
		{"unknown key", "/api/forms/1", map[string]string{"X-API-Key": "wsk_notarealkey"}, 401, "NOT_FOUND"},
		// nginx passes a client's X-Forwarded-Uri into the subrequest; the
		// snippet blanks it, or this request would be judged as public.
		{"spoofed X-Forwarded-Uri", "/api/forms/1", map[string]string{"X-Forwarded-Uri": "/public/status", "X-Forwarded-Method": "GET"}, 401, "MISSING_KEY"},
		{"missing scope", "/api/guests/1", map[string]string{"X-API-Key": tiny.Secret}, 403, "INSUFFICIENT_SCOPE"},
		// Tomcat and Spring serve /api;/guests/1 as /api/guests/1; nginx
		// passes the path on as sent, so apiwarden refuses it.
		{"path parameter", "/api;/guests/1", map[string]string{"X-API-Key": premiumNoScopes.Secret}, 403, "INVALID_PATH"},
	}
	for _, tc := range denials {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := nginxDo(t, client, "GET", base+tc.path, tc.headers)
			nginxWantDenial(t, aw, resp, body, tc.path, tc.headers, tc.status, tc.code)
		})
	}

	t.Run("rate limited is 403 with RATE_LIMITED", func(t *testing.T) {
		headers := map[string]string{"X-API-Key": tiny.Secret}
		for i := range 3 {
			resp, body := nginxDo(t, client, "GET", base+"/api/forms/1", headers)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d: status %d, want 200 within the burst of 3: %s", i+1, resp.StatusCode, body)
			}
			if got, want := resp.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(2-i); got != want {
				t.Errorf("request %d: X-RateLimit-Remaining %q, want %s", i+1, got, want)
			}
		}
		resp, body := nginxDo(t, client, "GET", base+"/api/forms/1", headers)
		nginxWantDenial(t, aw, resp, body, "/api/forms/1", headers, 403, "RATE_LIMITED")
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After %q, want 1 to 60 seconds", resp.Header.Get("Retry-After"))
		}
		if got := resp.Header.Get("X-RateLimit-Remaining"); got != "0" {
			t.Errorf("X-RateLimit-Remaining %q on the denial, want 0", got)
		}
		if resp.Header.Get("RateLimit-Policy") == "" || resp.Header.Get("X-RateLimit-Reset") == "" {
			t.Errorf("denial lacks rate-limit headers: %v", resp.Header)
		}
	})

	t.Run("client IP comes from X-Forwarded-For of a trusted nginx", func(t *testing.T) {
		// nginx sees the client as 127.0.0.2 or .3; apiwarden sees nginx as
		// 127.0.0.1, its only trusted proxy.
		from2, from3 := nginxClientFrom(t, "127.0.0.2"), nginxClientFrom(t, "127.0.0.3")
		pinned := aw.createKey(t, `{"name":"nginx pinned","owner_id":"org_pin","tier":"premium","allowed_ips":["127.0.0.2/32"]}`)
		headers := map[string]string{"X-API-Key": pinned.Secret}
		if resp, body := nginxDo(t, from2, "GET", base+"/api/forms/1", headers); resp.StatusCode != http.StatusOK {
			t.Fatalf("from the allowed address: status %d: %s", resp.StatusCode, body)
		}
		resp, body := nginxDo(t, from3, "GET", base+"/api/forms/1", headers)
		nginxWantCode(t, resp, body, 403, "IP_NOT_ALLOWED")
		// A client cannot pick its address: nginx appends the real one, and
		// apiwarden stops at the first untrusted hop from the right.
		headers["X-Forwarded-For"] = "127.0.0.2"
		resp, body = nginxDo(t, from3, "GET", base+"/api/forms/1", headers)
		nginxWantCode(t, resp, body, 403, "IP_NOT_ALLOWED")
	})

	t.Run("apiwarden requires the service token nginx sends", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+aw.enforceAddr+"/v1/authorize", nil)
		req.Header.Set("X-API-Key", premium.Secret)
		resp, body := nginxSend(t, client, req)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("without the token: status %d, want 401: %s", resp.StatusCode, body)
		}
	})
}

// nginxWantDenial checks a denial as nginx answered it: the status, the
// X-Apiwarden-Code and X-Request-Id headers, and a body byte-identical to
// the one apiwarden itself sends for the same request and request id.
func nginxWantDenial(t *testing.T, aw *nginxApiwarden, resp *http.Response, body []byte, path string, headers map[string]string, status int, code string) {
	t.Helper()
	nginxWantCode(t, resp, body, status, code)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	rid := resp.Header.Get("X-Request-Id")
	if rid == "" {
		t.Fatal("denial has no X-Request-Id")
	}
	var e struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("body is not the error body: %v: %s", err, body)
	}
	if e.Error.Code != code || e.Error.RequestID != rid || e.Error.Message == "" {
		t.Errorf("body %s, want code %s and request id %s", body, code, rid)
	}

	// The same question, asked of apiwarden directly with the same request
	// id, must give the same body: the snippet's messages are apiwarden's.
	req, _ := http.NewRequest("GET", "http://"+aw.enforceAddr+"/v1/authorize", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Del("X-Forwarded-Uri")
	req.Header.Del("X-Forwarded-Method")
	req.Header.Set("X-Original-URI", path)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Request-Id", rid)
	req.Header.Set("X-Apiwarden-Token", nginxTestServiceToken)
	direct, directBody := nginxSend(t, &http.Client{Timeout: 10 * time.Second}, req)
	if direct.StatusCode < 400 {
		t.Fatalf("apiwarden allowed the request nginx denied: %d", direct.StatusCode)
	}
	if !bytes.Equal(body, directBody) {
		t.Errorf("nginx's body differs from apiwarden's: update the map in docs/integrations.md\nnginx:     %s\napiwarden: %s", body, directBody)
	}
}

func nginxWantCode(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("X-Apiwarden-Code"); got != code {
		t.Errorf("X-Apiwarden-Code %q, want %q", got, code)
	}
}

func nginxWantHeader(t *testing.T, h http.Header, name, want string) {
	t.Helper()
	if got := h.Values(name); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
		t.Errorf("the app got %s %q, want %q", name, got, want)
	}
}

// nginxEchoApp answers with the headers it received, and the method and
// URI as X-Echo-Method and X-Echo-Uri.
func nginxEchoApp(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Uri", r.RequestURI)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(h)
}

func nginxEchoed(t *testing.T, body []byte) http.Header {
	t.Helper()
	var h http.Header
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatalf("not the app's answer: %v: %s", err, body)
	}
	return h
}

func nginxDo(t *testing.T, c *http.Client, method, url string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return nginxSend(t, c, req)
}

func nginxSend(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// nginxClientFrom is a client whose connections come from a given
// loopback address (Linux routes all of 127.0.0.0/8 to lo).
func nginxClientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	local := &net.TCPAddr{IP: net.ParseIP(ip)}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: local.IP})
	if err != nil {
		t.Skipf("cannot use %s as a client address here: %v", ip, err)
	}
	ln.Close()
	dialer := &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
}

// nginxBinary finds nginx in PATH or /usr/sbin, or skips the test (fails
// it when APIWARDEN_REQUIRE_NGINX=1).
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("APIWARDEN_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx not found in PATH or /usr/sbin, and APIWARDEN_REQUIRE_NGINX=1: install it (Debian: apt-get install nginx-light)")
	}
	t.Skip("nginx not found in PATH or /usr/sbin (Debian: apt-get install nginx-light); APIWARDEN_REQUIRE_NGINX=1 makes this a failure")
	return ""
}

// nginxSnippet is the text between the marker lines of the documented
// nginx configuration.
func nginxSnippet(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(nginxDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), nginxBeginMarker+"\n")
	snippet, _, ok2 := strings.Cut(rest, nginxEndMarker+"\n")
	if !ok || !ok2 {
		t.Fatalf("%s has no %q ... %q block", nginxDoc, nginxBeginMarker, nginxEndMarker)
	}
	for _, s := range []string{nginxDocApiwarden, nginxDocApp, nginxDocListen, nginxDocTokenFile} {
		if n := strings.Count(snippet, s); n != 1 {
			t.Fatalf("the nginx snippet in %s contains %q %d times; the test replaces it and expects it exactly once", nginxDoc, s, n)
		}
	}
	return snippet
}

// nginxStart runs nginx with the snippet in a private directory and
// returns its base URL. nginx runs as one foreground process (no daemon,
// no master), so stopping that process stops all of it.
func nginxStart(t *testing.T, binary, snippet, apiwardenAddr, appAddr string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "apiwarden-token.conf")
	if err := os.WriteFile(tokenFile, []byte(`proxy_set_header X-Apiwarden-Token "`+nginxTestServiceToken+`";`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		port := edgetest.FreePort(t)
		conf := strings.NewReplacer(
			nginxDocApiwarden, apiwardenAddr,
			nginxDocApp, appAddr,
			nginxDocListen, "listen 127.0.0.1:"+port+";",
			nginxDocTokenFile, tokenFile,
		).Replace(snippet)
		base, err := nginxRun(t, binary, dir, conf, port)
		if err == nil {
			return base
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatal(err)
		}
	}
}

func nginxRun(t *testing.T, binary, dir, snippet, port string) (string, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "apiwarden.conf"), []byte(snippet), 0o600); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(dir, "error.log")
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[2]s notice;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/apiwarden.conf;
}
`, dir, errorLog)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(errorLog)

	cmd := exec.Command(binary, "-p", dir, "-c", confPath, "-e", errorLog)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting nginx: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	logs := func() string {
		data, _ := os.ReadFile(errorLog)
		return out.String() + string(data)
	}

	addr := "127.0.0.1:" + port
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			return "", fmt.Errorf("nginx exited (%v):\n%s", err, logs())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", errors.New("nginx did not start listening within 15s:\n" + logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("nginx log:\n%s", logs())
		}
	})
	return "http://" + addr, nil
}

// nginxApiwarden is a running apiwarden without an upstream: /v1/* on
// enforceAddr, the admin API on adminAddr.
type nginxApiwarden struct {
	enforceAddr, adminAddr string
}

func nginxStartApiwarden(t *testing.T) *nginxApiwarden {
	t.Helper()
	a, _ := startApp(t, func(cfg *config.Config) {
		cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
		cfg.Security.AdminToken = nginxTestAdminToken
		cfg.Security.KeySecret = "nginx-test-key-secret-0123456789"
		cfg.Security.ServiceToken = nginxTestServiceToken
		cfg.Tiers["tiny"] = config.Tier{RequestsPerHour: 100, BurstPerMinute: 3}
		cfg.Calendar = nil // no Saturday or peak-season multipliers: the burst is exactly 3
		cfg.Routes = []config.Route{
			{Path: "/public/*", Preset: "public"},
			{Path: "/api/guests/*", Preset: "protected", Scopes: []string{"guests:read"}},
		}
	})
	aw := &nginxApiwarden{enforceAddr: a.Addr(), adminAddr: a.AdminAddr()}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + aw.adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return aw
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("apiwarden did not become ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (aw *nginxApiwarden) createKey(t *testing.T, params string) edgetest.Key {
	t.Helper()
	return edgetest.CreateKey(t, nil, "http://"+aw.adminAddr, nginxTestAdminToken, params)
}
