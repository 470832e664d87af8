package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/internal/edgetest"
)

// The dashboard end to end, in Debian's Chromium driven over the DevTools
// protocol, against the real app on loopback: log in, create a key and
// read its secret once, send traffic with it and watch the overview move,
// revoke it and see its next request rejected, log out; then trigger and
// acknowledge an alert. Screenshots of every view go to
// $APIWARDEN_E2E_ARTIFACTS or the test's temporary directory.
//
// Without Chromium the test skips, unless APIWARDEN_REQUIRE_BROWSER=1
// (CI sets it after installing chromium), where it fails instead.
func TestDashboardEndToEnd(t *testing.T) {
	browser := findChromium(t)
	if testing.Short() {
		t.Skip("drives a browser; not in -short")
	}
	env := startDashboardApp(t)
	b := startBrowser(t, browser, env)

	// Log in.
	b.run("open the login page",
		chromedp.Navigate(env.admin+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.shot("login")
	b.run("log in with a wrong token",
		chromedp.SendKeys(chromedp.CSS("#login-token"), "not-the-token"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := b.text("#login-error"); !strings.Contains(msg, "not valid") {
		t.Fatalf("a wrong token says %q", msg)
	}
	b.login()
	b.run("see the overview", chromedp.WaitVisible(chromedp.CSS(`[data-stat="requests"] .value`)))

	// First load of the overview: everything transferred, assets included.
	time.Sleep(1500 * time.Millisecond)
	transfer := eval[struct{ Bytes, Entries, Decoded float64 }](b, `(() => {
		const es = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
		return {Bytes: es.reduce((s, e) => s + e.transferSize, 0), Entries: es.length,
			Decoded: es.reduce((s, e) => s + e.decodedBodySize, 0)};
	})()`)
	t.Logf("first load of the overview: %.0f bytes transferred in %.0f responses (%.0f bytes decoded)", transfer.Bytes, transfer.Entries, transfer.Decoded)
	if transfer.Bytes <= 0 || transfer.Bytes >= 300*1024 {
		t.Fatalf("first load transferred %.0f bytes, want more than 0 and under 300 KB", transfer.Bytes)
	}
	b.shot("overview-empty")

	// Create a key; its secret is shown once.
	b.nav("keys", `[data-testid="create-key"]`)
	b.run("create a key",
		chromedp.Click(chromedp.CSS(`[data-testid="create-key"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-name"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="key-name"]`), "e2e-key"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="key-tier"]`), "enterprise"),
		chromedp.Click(chromedp.CSS(`[data-testid="create-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="secret"]`)))
	secret := b.text(`[data-testid="secret"]`)
	if !strings.HasPrefix(secret, "wsk_") || len(secret) < 30 {
		t.Fatalf("the secret shown is %q", secret)
	}
	b.shot("keys-secret-once")
	b.run("close the secret",
		chromedp.Click(chromedp.CSS(`[data-testid="secret-done"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="secret"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key-name="e2e-key"]`)))
	if eval[bool](b, fmt.Sprintf(`document.documentElement.outerHTML.includes(%q)`, secret)) {
		t.Fatal("the secret is still in the page after its dialog closed")
	}
	keyID := eval[string](b, `document.querySelector('tr[data-key-name="e2e-key"]').dataset.keyId`)
	if body := env.adminGet(t, "/admin/v1/keys/"+keyID); strings.Contains(body, secret) {
		t.Fatal("the admin API shows the secret again")
	}
	b.shot("keys")

	// Traffic with the key moves the overview within 3 seconds.
	t.Run("overview moves", func(t *testing.T) {
		parent := b.t
		b.t = t
		defer func() { b.t = parent }()
		b.nav("overview", `[data-stat="requests"] .value`)
		time.Sleep(1200 * time.Millisecond) // a snapshot or two before the traffic
		before := b.statValue("requests")
		sent := time.Now()
		for i := 0; i < 25; i++ {
			if status, body := env.proxyGet(t, "/api/forms/"+strconv.Itoa(i), secret); status != 200 {
				t.Fatalf("request %d with the new key: %d %s", i, status, body)
			}
		}
		deadline := sent.Add(3 * time.Second)
		for {
			now := b.statValue("requests")
			if now >= before+25 {
				t.Logf("overview requests went from %.0f to %.0f %v after the first request", before, now, time.Since(sent).Round(10*time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				b.shot("overview-stuck")
				t.Fatalf("overview requests %.0f, still short of %.0f 3 s after the traffic started", now, before+25)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(1500 * time.Millisecond) // let the chart draw a few live points
		b.shot("overview")
		b.withViewport(390, 844, func() { b.shot("overview-phone") })
		b.withDark(func() { b.shot("overview-dark") })
	})

	// The other views, for the record; each must say something, not be blank.
	for _, v := range []struct{ name, ready string }{
		{"traffic", `[aria-labelledby="tr-req"] .chart, [aria-labelledby="tr-req"] .empty`},
		{"endpoints", `.table-wrap, .notice`},
		{"requests", `.table-wrap, .notice, .empty`},
		{"alerts", `.list, .notice, .empty`},
	} {
		b.nav(v.name, v.ready)
		time.Sleep(800 * time.Millisecond)
		text := eval[string](b, `document.getElementById('main').innerText`)
		if len(strings.TrimSpace(text)) < 40 {
			t.Errorf("the %s view shows almost nothing: %q", v.name, text)
		}
		b.shot(v.name)
	}
	b.withViewport(390, 844, func() {
		b.nav("keys", `tr[data-key-name="e2e-key"]`)
		b.shot("keys-phone")
	})

	b.checkProblems()

	// Revoke with confirmation; the key's next request is rejected.
	b.nav("keys", `tr[data-key-name="e2e-key"]`)
	b.run("revoke the key",
		chromedp.Click(chromedp.CSS(`tr[data-key-name="e2e-key"] button[data-action="revoke"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="confirm"]`)))
	b.shot("keys-revoke-confirm")
	b.run("confirm the revocation",
		chromedp.Click(chromedp.CSS(`[data-testid="confirm"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key-name="e2e-key"] .badge.revoked`)))
	status, body := env.proxyGet(t, "/api/forms/after-revoke", secret)
	if status != http.StatusUnauthorized || !strings.Contains(body, "REVOKED") {
		t.Fatalf("a request with the revoked key: %d %s, want 401 REVOKED", status, body)
	}
	events := env.adminGet(t, "/admin/v1/keys/"+keyID+"/events")
	if !strings.Contains(events, `"actor":"dashboard"`) {
		t.Fatalf("the key's audit events do not name the dashboard: %s", events)
	}

	// Log out: the page returns to the login form and the cookie no longer works.
	b.checkProblems()
	b.run("log out",
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#login-token")))
	after := eval[int](b, `fetch('/admin/v1/keys').then(r => r.status)`)
	if after != http.StatusUnauthorized {
		t.Fatalf("after logout the admin API answers the page %d, want 401", after)
	}

	// Trigger an error spike and acknowledge its alert.
	t.Run("alert", func(t *testing.T) {
		parent := b.t
		b.t = t
		defer func() { b.t = parent }()
		var created struct {
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal([]byte(env.adminDo(t, "POST", "/admin/v1/keys", `{"name":"e2e-alert","tier":"enterprise"}`, 201)), &created); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if status, body := env.proxyGet(t, "/fail/"+strconv.Itoa(i), created.Secret); status != 500 {
				t.Fatalf("request %d to the failing upstream: %d %s", i, status, body)
			}
		}
		// A key past 5% of its hourly bucket (tier e2e: 100 an hour).
		var quotaKey struct {
			Key    struct{ ID string } `json:"key"`
			Secret string              `json:"secret"`
		}
		if err := json.Unmarshal([]byte(env.adminDo(t, "POST", "/admin/v1/keys", `{"name":"e2e quota key","owner_id":"org_e2e","tier":"e2e"}`, 201)), &quotaKey); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if status, body := env.proxyGet(t, "/ok/"+strconv.Itoa(i), quotaKey.Secret); status != 200 {
				t.Fatalf("request %d with the quota key: %d %s", i, status, body)
			}
		}
		firing := func(rule string) string {
			deadline := time.Now().Add(30 * time.Second)
			for {
				var list struct {
					Alerts []struct{ ID, State, Rule string } `json:"alerts"`
				}
				_ = json.Unmarshal([]byte(env.adminGet(t, "/admin/v1/alerts?state=firing")), &list)
				for _, a := range list.Alerts {
					if a.Rule == rule {
						return a.ID
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %s alert fired within 30 s", rule)
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
		alertID, quotaID := firing("e2e-errors"), firing("e2e-quota")
		b.login()
		b.nav("alerts", `li[data-alert-id="`+alertID+`"] button[data-action="ack"]`)
		b.run("see the quota alert", chromedp.WaitVisible(chromedp.CSS(`li[data-alert-id="`+quotaID+`"]`)))
		b.shot("alerts-firing")
		checkAlertSubjects(b, `li[data-alert-id="`+alertID+`"]`, `li[data-alert-id="`+quotaID+`"]`, quotaKey.Key.ID)
		b.nav("overview", `[data-testid="overview-alerts"] li`)
		checkAlertSubjects(b, `[data-testid="overview-alerts"] li:has([data-subject-kind="global"])`,
			`[data-testid="overview-alerts"] li:has([data-subject-kind="key"])`, quotaKey.Key.ID)
		b.nav("alerts", `li[data-alert-id="`+alertID+`"] button[data-action="ack"]`)
		b.run("acknowledge the alert",
			chromedp.Click(chromedp.CSS(`li[data-alert-id="`+alertID+`"] button[data-action="ack"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="alert-note"]`)),
			chromedp.SendKeys(chromedp.CSS(`[data-testid="alert-note"]`), "looking into it (e2e)"),
			chromedp.Click(chromedp.CSS(`[data-testid="alert-submit"]`)),
			chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="alert-note"]`)))
		one := env.adminGet(t, "/admin/v1/alerts/"+alertID)
		if !strings.Contains(one, "looking into it (e2e)") || !strings.Contains(one, `"dashboard"`) {
			t.Fatalf("the alert does not carry the dashboard's acknowledgement: %s", one)
		}
		b.run("see it acknowledged",
			chromedp.Click(chromedp.CSS(`.tabs button[data-state="acknowledged"]`)),
			chromedp.WaitVisible(chromedp.CSS(`li[data-alert-id="`+alertID+`"]`)))
		b.shot("alerts-acknowledged")
		b.run("log out again",
			chromedp.Click(chromedp.CSS("#logout")),
			chromedp.WaitVisible(chromedp.CSS("#login-token")))
	})
}

// checkAlertSubjects reads two alerts as a person sees them: the one on
// the whole service says so (not "global undefined"), and the one on a
// key names it by its name and owner, with its id in an element that
// selects whole on a click, to copy.
func checkAlertSubjects(b *browserSession, globalAlert, keyAlert, keyID string) {
	b.t.Helper()
	if text := b.text(globalAlert); strings.Contains(text, "undefined") || !strings.Contains(text, "whole service") {
		b.t.Errorf("the alert on the whole service reads %q", text)
	}
	if title := b.text(keyAlert + " .title"); !strings.Contains(title, `"e2e quota key"`) || !strings.Contains(title, "org_e2e") {
		b.t.Errorf("the key's alert title %q does not name the key and its owner", title)
	}
	id := eval[struct{ Text, Select string }](b, `(() => {
		const el = document.querySelector(`+strconv.Quote(keyAlert+` [data-subject-kind="key"] code`)+`);
		return el ? {Text: el.textContent, Select: getComputedStyle(el).userSelect} : {Text: '', Select: ''};
	})()`)
	if id.Text != keyID || id.Select != "all" {
		b.t.Errorf("the key's id to copy: %q (user-select %q), want %q selecting whole", id.Text, id.Select, keyID)
	}
}

// startBrowser starts Chromium on a fresh profile, headless, and returns
// a session on its tab that records CSP violations (an inline style or
// script slipped in) and uncaught errors for checkProblems. Screenshots
// go to $APIWARDEN_E2E_ARTIFACTS or the test's temporary directory. The
// browser stops when the test ends.
func startBrowser(t *testing.T, browser string, env *dashboardEnv) *browserSession {
	t.Helper()
	shots := os.Getenv("APIWARDEN_E2E_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", shots)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(browser),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.UserDataDir(t.TempDir()),
			chromedp.WindowSize(1280, 900),
		)...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(cancel)

	// The first action starts the browser; it lives as long as the context
	// given here, so later steps may use shorter ones.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", browser, err)
	}
	b := &browserSession{t: t, ctx: ctx, shots: shots, env: env}
	b.run("watch for CSP violations and page errors", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
			window.__problems = [];
			document.addEventListener('securitypolicyviolation', (e) => window.__problems.push('CSP: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));
			window.addEventListener('error', (e) => window.__problems.push('error: ' + e.message + ' ' + e.filename + ':' + e.lineno));
			window.addEventListener('unhandledrejection', (e) => window.__problems.push('unhandled rejection: ' + (e.reason && e.reason.message || e.reason)));`})
		return err
	}))
	return b
}

// checkProblems fails the test if the page reported CSP violations or
// uncaught errors since it was opened.
func (b *browserSession) checkProblems() {
	b.t.Helper()
	if problems := eval[[]string](b, `window.__problems || ['the watcher script did not run']`); len(problems) > 0 {
		b.t.Errorf("the page reported problems:\n%s", strings.Join(problems, "\n"))
	}
}

// findChromium returns the browser to drive, or skips (fails when
// APIWARDEN_REQUIRE_BROWSER=1).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("APIWARDEN_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("APIWARDEN_REQUIRE_BROWSER") == "1" {
		t.Fatal("APIWARDEN_REQUIRE_BROWSER=1 but no Chromium was found: apt-get install -y chromium, or set APIWARDEN_CHROMIUM")
	}
	t.Skip("no Chromium on this machine (apt-get install -y chromium); set APIWARDEN_REQUIRE_BROWSER=1 to make this a failure")
	return ""
}

// dashboardEnv is the running app and its fake upstream.
type dashboardEnv struct {
	admin, proxy, token string
	client              *http.Client
}

const e2eAdminToken = "e2e-admin-token-0123456789"

func startDashboardApp(t *testing.T) *dashboardEnv {
	t.Helper()
	env, _ := startDashboardAppWith(t, nil)
	return env
}

// startDashboardAppWith starts the app of startDashboardApp with mutate
// applied to its configuration, and returns the function that stops it
// (also called when the test ends, if not before).
func startDashboardAppWith(t *testing.T, mutate func(*config.Config)) (*dashboardEnv, func()) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail") {
			http.Error(w, `{"error":"upstream broke"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(upstream.Close)

	cfg := config.Default()
	cfg.Server.Listen = edgetest.FreeAddr(t)
	cfg.Server.AdminListen = edgetest.FreeAddr(t)
	cfg.Server.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Security.AdminToken = config.Secret(e2eAdminToken)
	cfg.Security.KeySecret = config.Secret("e2e-key-secret-e2e-key-secret")
	cfg.Proxy.Upstream = upstream.URL
	cfg.Alerts.EvaluationInterval = config.Duration(time.Second)
	cfg.Tiers["e2e"] = config.Tier{RequestsPerHour: 100, BurstPerMinute: 50}
	cfg.Alerts.Rules = []config.AlertRule{{
		Name: "e2e-errors", Type: "error_spike", Subject: "global", Window: config.Duration(time.Minute),
		Threshold: 0.2, MinRequests: 5, Severity: "high",
	}, {
		Name: "e2e-quota", Type: "quota_warning", Subject: "key", Threshold: 0.05, Severity: "low",
	}}
	if mutate != nil {
		mutate(cfg)
	}
	a, err := app.New(cfg, app.Options{Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	env := &dashboardEnv{admin: "http://" + a.AdminAddr(), proxy: "http://" + a.Addr(), token: e2eAdminToken,
		client: &http.Client{Timeout: 10 * time.Second}}
	waitReady(t, env.admin)
	return env, stop
}

func (e *dashboardEnv) adminDo(t *testing.T, method, path, body string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(method, e.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return string(data)
}

func (e *dashboardEnv) adminGet(t *testing.T, path string) string {
	t.Helper()
	return e.adminDo(t, "GET", path, "", 200)
}

func (e *dashboardEnv) proxyGet(t *testing.T, path, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.proxy+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// browserSession runs steps in one tab and names the failing step.
type browserSession struct {
	t     *testing.T
	ctx   context.Context
	shots string
	env   *dashboardEnv
	n     int
}

func (b *browserSession) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

func (b *browserSession) fail(step string, err error) {
	b.t.Helper()
	b.shot("failed-" + strings.ReplaceAll(step, " ", "-"))
	if errors.Is(err, context.DeadlineExceeded) {
		b.t.Fatalf("%s: timed out (screenshot saved)", step)
	}
	b.t.Fatalf("%s: %v", step, err)
}

// value runs an action that returns something.
func value[T any](b *browserSession, step string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(step, err)
	}
	return v
}

// eval runs JavaScript in the page, waiting for a promise it returns.
func eval[T any](b *browserSession, js string) T {
	b.t.Helper()
	return value(b, "evaluate "+firstLine(js), chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func (b *browserSession) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(value(b, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

func (b *browserSession) login() {
	b.t.Helper()
	b.run("log in",
		chromedp.WaitVisible(chromedp.CSS("#login-token")),
		chromedp.Clear(chromedp.CSS("#login-token")),
		chromedp.SendKeys(chromedp.CSS("#login-token"), b.env.token),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#shell")))
}

// nav follows a navigation link, as a person would, and waits for ready.
func (b *browserSession) nav(view, ready string) {
	b.t.Helper()
	b.run("open "+view,
		chromedp.Click(chromedp.CSS(`#nav a[data-view="`+view+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`main[data-view="`+view+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(ready)))
}

func (b *browserSession) statValue(stat string) float64 {
	b.t.Helper()
	v := eval[string](b, `document.querySelector('[data-stat="`+stat+`"] .value').dataset.value`)
	f, _ := strconv.ParseFloat(v, 64)
	return f
}

// shot saves a full-page PNG, numbered in the order taken.
func (b *browserSession) shot(name string) {
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

func (b *browserSession) withViewport(w, h int64, f func()) {
	b.run("narrow the window", chromedp.EmulateViewport(w, h))
	time.Sleep(400 * time.Millisecond)
	f()
	b.run("restore the window", chromedp.EmulateViewport(1280, 900))
}

func (b *browserSession) withDark(f func()) {
	scheme := func(v string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}})
			return err
		})
	}
	b.run("switch to dark", scheme("dark"))
	time.Sleep(400 * time.Millisecond)
	f()
	b.run("switch back to light", scheme("light"))
}
