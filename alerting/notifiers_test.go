package alerting_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func indentJSON(t *testing.T, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		t.Fatalf("invalid JSON %q: %v", raw, err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// fixtureAlerts is a group with one firing and one resolved alert, with
// fixed times and fingerprints so payloads are byte-for-byte stable.
func fixtureAlerts() []alerting.Alert {
	mk := func(route string, seq string) alerting.Alert {
		s := alerting.Subject{Kind: alerting.SubjectRoute, Value: route}
		fp := alerting.Fingerprint("error-spike", s)
		return alerting.Alert{
			ID: fp + "-" + seq, Fingerprint: fp, Rule: "error-spike", Type: alerting.ErrorSpike,
			Subject: s, Severity: alerting.SeverityCritical, State: alerting.StateFiring,
			Labels: map[string]string{"alertname": "error-spike", "severity": "critical", "rule_type": "error_spike",
				"subject_kind": "route", "subject": route, "route": route},
			Summary:     "5xx rate 12% on route:" + route,
			Description: "120 of 1000 requests in the last 5m were answered with a 5xx status (threshold 5%, at least 50 requests).",
			Value:       0.12, Threshold: 0.05,
			ActiveAt: t0, FiredAt: t0.Add(time.Minute), LastNotifiedAt: t0.Add(time.Minute),
		}
	}
	firing := mk("/api/forms/*", "1")
	resolved := mk("/api/guests/*", "2")
	resolved.State = alerting.StateResolved
	resolved.ResolvedAt = t0.Add(20 * time.Minute)
	resolved.ResolvedBy = "ana"
	return []alerting.Alert{firing, resolved}
}

func fixtureContext() context.Context {
	return alerting.WithGroup(context.Background(), alerting.Group{
		Receiver: "ops",
		Key:      `{}:{alertname="error-spike"}`,
		Labels:   map[string]string{"alertname": "error-spike"},
	})
}

// hookServer is an httptest server that records requests and answers
// with the statuses it is given in turn (the last one repeats).
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
	statuses []int
	before   func() // runs before answering, e.g. to block
}

func newHookServer(t *testing.T, statuses ...int) *hookServer {
	h := &hookServer{statuses: statuses}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, body)
		h.headers = append(h.headers, r.Header.Clone())
		status := http.StatusOK
		if n := len(h.bodies); len(h.statuses) > 0 {
			status = h.statuses[min(n, len(h.statuses))-1]
		}
		before := h.before
		h.mu.Unlock()
		if before != nil {
			before()
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

func TestWebhookPayloadGolden(t *testing.T) {
	srv := newHookServer(t)
	wh, err := alerting.NewWebhook(alerting.WebhookConfig{
		URL: srv.URL + "/hook", ExternalURL: "https://warden.example.invalid",
		Headers: map[string]string{"Authorization": "Bearer s3cret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := wh.Notify(fixtureContext(), fixtureAlerts()...); err != nil {
		t.Fatalf("notify: %v (retryable %v)", err, retry)
	}
	if srv.requests() != 1 {
		t.Fatalf("%d requests", srv.requests())
	}
	if got := srv.headers[0].Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization %q", got)
	}
	if got := srv.headers[0].Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	golden(t, "webhook.golden.json", indentJSON(t, srv.bodies[0]))

	var m alerting.WebhookMessage
	if err := json.Unmarshal(srv.bodies[0], &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != "4" || m.Status != "firing" || m.Receiver != "ops" || len(m.Alerts) != 2 ||
		m.Alerts[1].Status != "resolved" || m.CommonLabels["alertname"] != "error-spike" ||
		m.CommonLabels["route"] != "" || !m.Alerts[0].EndsAt.IsZero() {
		t.Fatalf("message %+v", m)
	}
}

func TestWebhookTruncates(t *testing.T) {
	m := alerting.NewWebhookMessage(alerting.Group{}, "", 1, fixtureAlerts())
	if len(m.Alerts) != 1 || m.TruncatedAlerts != 1 {
		t.Fatalf("alerts %d truncated %d", len(m.Alerts), m.TruncatedAlerts)
	}
}

func TestWebhookRetryableByStatus(t *testing.T) {
	cases := []struct {
		status    int
		ok        bool
		retryable bool
	}{
		{200, true, false}, {204, true, false},
		{400, false, false}, {401, false, false}, {404, false, false}, {410, false, false},
		{429, false, true}, {500, false, true}, {502, false, true}, {503, false, true},
	}
	for _, tc := range cases {
		srv := newHookServer(t, tc.status)
		wh, _ := alerting.NewWebhook(alerting.WebhookConfig{URL: srv.URL})
		retryable, err := wh.Notify(fixtureContext(), fixtureAlerts()...)
		if (err == nil) != tc.ok || retryable != tc.retryable {
			t.Errorf("status %d: err %v retryable %v; want ok %v retryable %v", tc.status, err, retryable, tc.ok, tc.retryable)
		}
	}
	srv := newHookServer(t)
	srv.Close()
	wh, _ := alerting.NewWebhook(alerting.WebhookConfig{URL: srv.URL})
	if retryable, err := wh.Notify(fixtureContext(), fixtureAlerts()...); err == nil || !retryable {
		t.Errorf("unreachable server: err %v retryable %v, want a retryable error", err, retryable)
	}
}

func TestNotifierConfigErrors(t *testing.T) {
	for _, u := range []string{"", "example.com/hook", "ftp://example.com/x", "http://"} {
		if _, err := alerting.NewWebhook(alerting.WebhookConfig{URL: u}); !errors.Is(err, alerting.ErrInvalidReceiver) {
			t.Errorf("webhook url %q: %v", u, err)
		}
		if _, err := alerting.NewSlack(alerting.SlackConfig{URL: u}); !errors.Is(err, alerting.ErrInvalidReceiver) {
			t.Errorf("slack url %q: %v", u, err)
		}
	}
	bad := []alerting.EmailConfig{
		{Addr: "mail.example.com", From: "a@example.com", To: []string{"b@example.com"}},
		{Addr: "mail.example.com:25", From: "not an address", To: []string{"b@example.com"}},
		{Addr: "mail.example.com:25", From: "a@example.com"},
		{Addr: "mail.example.com:25", From: "a@example.com", To: []string{"b@example.com"}, Username: "u"},
	}
	for _, cfg := range bad {
		if _, err := alerting.NewEmail(cfg); !errors.Is(err, alerting.ErrInvalidReceiver) {
			t.Errorf("email %+v: %v", cfg, err)
		}
	}
}

func TestSlackPayloadGolden(t *testing.T) {
	srv := newHookServer(t)
	sl, err := alerting.NewSlack(alerting.SlackConfig{URL: srv.URL + "/services/T0/B0/XXXX", ExternalURL: "https://warden.example.invalid"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.Notify(fixtureContext(), fixtureAlerts()...); err != nil {
		t.Fatal(err)
	}
	golden(t, "slack.golden.json", indentJSON(t, srv.bodies[0]))
	var m alerting.SlackMessage
	_ = json.Unmarshal(srv.bodies[0], &m)
	if m.Text != "[FIRING:1] error-spike" || m.Blocks[0].Type != "header" {
		t.Fatalf("message %+v", m)
	}
}

// smtpServer is a small SMTP server for tests: EHLO/HELO, STARTTLS (when
// given a certificate), AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
type smtpServer struct {
	ln        net.Listener
	tlsConfig *tls.Config
	rcptReply string // e.g. "550 5.1.1 no such user"; empty accepts

	mu       sync.Mutex
	messages []smtpMessage
	wg       sync.WaitGroup
}

type smtpMessage struct {
	from string
	to   []string
	data string
	tls  bool
	auth string // the decoded AUTH PLAIN response
}

func newSMTPServer(t *testing.T, tlsConfig *tls.Config) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, tlsConfig: tlsConfig}
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(conn) })
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) received() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.messages...)
}

func (s *smtpServer) serve(conn net.Conn) {
	defer func() { conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	reply := func(lines ...string) {
		for _, l := range lines {
			_ = tp.PrintfLine("%s", l)
		}
	}
	reply("220 test.invalid ESMTP ready")
	var msg smtpMessage
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			lines := []string{"250-test.invalid"}
			if s.tlsConfig != nil && !msg.tls {
				lines = append(lines, "250-STARTTLS")
			}
			reply(append(lines, "250-AUTH PLAIN", "250 8BITMIME")...)
		case "HELO", "NOOP":
			reply("250 ok")
		case "RSET":
			msg = smtpMessage{tls: msg.tls}
			reply("250 ok")
		case "STARTTLS":
			if s.tlsConfig == nil {
				reply("502 not offered")
				continue
			}
			reply("220 go ahead")
			tlsConn := tls.Server(conn, s.tlsConfig)
			if err := tlsConn.Handshake(); err != nil {
				return
			}
			conn = tlsConn
			tp = textproto.NewConn(conn)
			msg = smtpMessage{tls: true}
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(initial)
			if !strings.EqualFold(mech, "PLAIN") || err != nil {
				reply("504 unsupported")
				continue
			}
			msg.auth = string(raw)
			reply("235 2.7.0 authenticated")
		case "MAIL":
			addr, _, _ := strings.Cut(arg[len("FROM:"):], " ") // drop BODY=8BITMIME and the like
			msg.from = strings.Trim(addr, "<>")
			reply("250 ok")
		case "RCPT":
			if s.rcptReply != "" {
				reply(s.rcptReply)
				continue
			}
			addr, _, _ := strings.Cut(arg[len("TO:"):], " ")
			msg.to = append(msg.to, strings.Trim(addr, "<>"))
			reply("250 ok")
		case "DATA":
			reply("354 end with <CRLF>.<CRLF>")
			data, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			msg.data = string(data)
			s.mu.Lock()
			s.messages = append(s.messages, msg)
			s.mu.Unlock()
			msg = smtpMessage{tls: msg.tls, auth: msg.auth}
			reply("250 2.0.0 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown command")
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a client config that
// trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test smtp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool}
}

func newTestEmail(t *testing.T, cfg alerting.EmailConfig) *alerting.Email {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "apiwarden <alerts@example.invalid>"
	}
	if cfg.To == nil {
		cfg.To = []string{"ops@example.invalid", "Ana <ana@example.invalid>"}
	}
	cfg.ExternalURL = "https://warden.example.invalid"
	cfg.Now = func() time.Time { return t0.Add(time.Minute) }
	e, err := alerting.NewEmail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmailPlainGolden(t *testing.T) {
	srv := newSMTPServer(t, nil)
	e := newTestEmail(t, alerting.EmailConfig{Addr: srv.addr()})
	if retry, err := e.Notify(fixtureContext(), fixtureAlerts()...); err != nil {
		t.Fatalf("notify: %v (retryable %v)", err, retry)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	m := got[0]
	if m.from != "alerts@example.invalid" || strings.Join(m.to, ",") != "ops@example.invalid,ana@example.invalid" || m.tls || m.auth != "" {
		t.Fatalf("envelope %+v", m)
	}
	golden(t, "email.golden.eml", []byte(m.data))
}

func TestEmailSTARTTLSAndAuth(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := newSMTPServer(t, serverTLS)
	e := newTestEmail(t, alerting.EmailConfig{Addr: srv.addr(), TLSConfig: clientTLS,
		Username: "warden", Password: "hunter2", RequireTLS: true})
	if _, err := e.Notify(fixtureContext(), fixtureAlerts()...); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 1 || !got[0].tls || got[0].auth != "\x00warden\x00hunter2" {
		t.Fatalf("messages %+v, want one over TLS with PLAIN auth", got)
	}
	plain := newTestEmail(t, alerting.EmailConfig{Addr: srv.addr()}) // no trust in the test CA
	if retryable, err := plain.Notify(fixtureContext(), fixtureAlerts()...); err == nil || retryable {
		t.Fatalf("untrusted certificate: err %v retryable %v", err, retryable)
	}
}

func TestEmailFailures(t *testing.T) {
	noTLS := newSMTPServer(t, nil)
	e := newTestEmail(t, alerting.EmailConfig{Addr: noTLS.addr(), RequireTLS: true})
	if retryable, err := e.Notify(fixtureContext(), fixtureAlerts()...); err == nil || retryable {
		t.Errorf("require_tls without STARTTLS: err %v retryable %v", err, retryable)
	}
	for _, tc := range []struct {
		reply     string
		retryable bool
	}{{"550 5.1.1 no such user", false}, {"451 4.3.0 try later", true}} {
		srv := newSMTPServer(t, nil)
		srv.rcptReply = tc.reply
		e := newTestEmail(t, alerting.EmailConfig{Addr: srv.addr()})
		if retryable, err := e.Notify(fixtureContext(), fixtureAlerts()...); err == nil || retryable != tc.retryable {
			t.Errorf("RCPT %q: err %v retryable %v", tc.reply, err, retryable)
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	e = newTestEmail(t, alerting.EmailConfig{Addr: addr})
	if retryable, err := e.Notify(fixtureContext(), fixtureAlerts()...); err == nil || !retryable {
		t.Errorf("connection refused: err %v retryable %v", err, retryable)
	}
}

var fastRetry = alerting.RetryPolicy{MaxAttempts: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}

// runDispatcher starts d and stops it when the test ends.
func runDispatcher(t *testing.T, d *alerting.Dispatcher) {
	go func() { _ = d.Run(context.Background()) }()
	t.Cleanup(d.Stop)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFailingWebhookIsRetriedAndDoesNotBlockSlack(t *testing.T) {
	slackGot := make(chan struct{})
	// Slack's answer waits until Exec has returned: if Exec waited for
	// delivery, Slack would give up waiting (a guard against a hung test,
	// not a figure under test) and the test fails on the flag it sets.
	execReturned := make(chan struct{})
	var execWaited atomic.Bool
	slackSrv := newHookServer(t)
	slackSrv.before = func() {
		select {
		case <-execReturned:
		case <-time.After(10 * time.Second):
			execWaited.Store(true)
		}
		close(slackGot)
	}
	hook := newHookServer(t, http.StatusInternalServerError)
	// The webhook's first answer waits until Slack has its message: if
	// the receivers shared a goroutine, this would never finish.
	var once sync.Once
	hook.before = func() {
		once.Do(func() {
			select {
			case <-slackGot:
			case <-time.After(5 * time.Second):
			}
		})
	}
	wh, _ := alerting.NewWebhook(alerting.WebhookConfig{URL: hook.URL})
	sl, _ := alerting.NewSlack(alerting.SlackConfig{URL: slackSrv.URL})
	d, err := alerting.NewDispatcher([]alerting.Receiver{
		{Name: "hook", Notifier: wh, Retry: fastRetry},
		{Name: "slack", Notifier: sl, Retry: fastRetry},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	if _, err := d.Exec(context.Background(), fixtureAlerts()...); err != nil {
		t.Fatal(err)
	}
	close(execReturned)
	if execWaited.Load() {
		t.Fatal("Exec waited for delivery")
	}
	select {
	case <-slackGot:
	case <-time.After(5 * time.Second):
		t.Fatal("slack was not notified while the webhook failed")
	}
	waitFor(t, "the webhook to give up", func() bool { return d.Stats()[0].Failed == 1 })
	if n := hook.requests(); n != 3 {
		t.Fatalf("webhook got %d attempts, want 3", n)
	}
	st := d.Stats()
	if st[0].Retried != 2 || st[0].Sent != 0 || st[1].Sent != 1 || st[1].Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBadRequestIsNotRetried(t *testing.T) {
	hook := newHookServer(t, http.StatusBadRequest)
	wh, _ := alerting.NewWebhook(alerting.WebhookConfig{URL: hook.URL})
	d, _ := alerting.NewDispatcher([]alerting.Receiver{{Name: "hook", Notifier: wh, Retry: fastRetry}}, nil)
	runDispatcher(t, d)
	_, _ = d.Exec(context.Background(), fixtureAlerts()...)
	waitFor(t, "the failure", func() bool { return d.Stats()[0].Failed == 1 })
	time.Sleep(50 * time.Millisecond) // time enough for retries that must not come
	if n := hook.requests(); n != 1 {
		t.Fatalf("%d attempts for a 400, want 1", n)
	}
}

func TestRateLimitedWebhookSucceedsOnRetry(t *testing.T) {
	hook := newHookServer(t, http.StatusTooManyRequests, http.StatusOK)
	wh, _ := alerting.NewWebhook(alerting.WebhookConfig{URL: hook.URL})
	d, _ := alerting.NewDispatcher([]alerting.Receiver{{Name: "hook", Notifier: wh, Retry: fastRetry}}, nil)
	runDispatcher(t, d)
	_, _ = d.Exec(context.Background(), fixtureAlerts()...)
	waitFor(t, "delivery", func() bool { return d.Stats()[0].Sent == 1 })
	if n, st := hook.requests(), d.Stats()[0]; n != 2 || st.Retried != 1 {
		t.Fatalf("%d requests, stats %+v", n, st)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	d, _ := alerting.NewDispatcher([]alerting.Receiver{{Name: "slow", Notifier: &recordingNotifier{}, QueueSize: 1}}, nil)
	// Not running: the queue fills after one batch.
	for range 3 {
		_, _ = d.Exec(context.Background(), fixtureAlerts()...)
	}
	st := d.Stats()[0]
	if st.Queued != 1 || st.Dropped != 4 {
		t.Fatalf("stats %+v, want 1 queued and 4 alerts dropped", st)
	}
}

// recordingNotifier remembers each group it is given.
type recordingNotifier struct {
	mu     sync.Mutex
	groups []alerting.Group
	alerts [][]alerting.Alert
}

func (n *recordingNotifier) Notify(ctx context.Context, alerts ...alerting.Alert) (bool, error) {
	g, _ := alerting.GroupFrom(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = append(n.groups, g)
	n.alerts = append(n.alerts, alerts)
	return false, nil
}

func (n *recordingNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.alerts)
}

func TestReceiverPipeline(t *testing.T) {
	all, high, firingOnly := &recordingNotifier{}, &recordingNotifier{}, &recordingNotifier{}
	d, err := alerting.NewDispatcher([]alerting.Receiver{
		{Name: "all", Notifier: all, GroupBy: []string{"alertname", "route"}},
		{Name: "high", Notifier: high, MinSeverity: alerting.SeverityHigh},
		{Name: "firing-only", Notifier: firingOnly, SkipResolved: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	alerts := fixtureAlerts()
	low := alerts[0]
	low.Severity = alerting.SeverityLow
	low.Rule, low.Labels = "other", map[string]string{"alertname": "other"}
	_, _ = d.Exec(context.Background(), append(alerts, low)...)
	waitFor(t, "deliveries", func() bool { return all.count() == 3 && high.count() == 1 && firingOnly.count() == 2 })

	if g := all.groups[1]; g.Receiver != "all" || g.Key != `{}:{alertname="error-spike", route="/api/guests/*"}` {
		t.Errorf("group %+v", g)
	}
	if got := high.alerts[0]; len(got) != 2 || got[0].Severity != alerting.SeverityCritical {
		t.Errorf("min severity high let through %+v", got)
	}
	for _, batch := range firingOnly.alerts {
		for _, a := range batch {
			if !a.Firing() {
				t.Errorf("resolved alert sent to a receiver that skips them")
			}
		}
	}
}

func TestNewDispatcherErrors(t *testing.T) {
	n := &recordingNotifier{}
	for _, rs := range [][]alerting.Receiver{
		{{Notifier: n}},
		{{Name: "a"}},
		{{Name: "a", Notifier: n}, {Name: "a", Notifier: n}},
		{{Name: "a", Notifier: n, MinSeverity: "urgent"}},
	} {
		if _, err := alerting.NewDispatcher(rs, nil); !errors.Is(err, alerting.ErrInvalidReceiver) {
			t.Errorf("%+v: %v", rs, err)
		}
	}
}

func TestDispatcherStop(t *testing.T) {
	d, _ := alerting.NewDispatcher(nil, nil)
	d.Stop() // before Run: Run returns at once
	done := make(chan error)
	go func() { done <- d.Run(context.Background()) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run after Stop did not return")
	}
	d.Stop()
}

func TestStages(t *testing.T) {
	ctx := context.Background()
	alerts := fixtureAlerts()
	boom := errors.New("boom")
	calls := 0
	counting := alerting.StageFunc(func(_ context.Context, a ...alerting.Alert) ([]alerting.Alert, error) {
		calls++
		return a, nil
	})
	failing := alerting.StageFunc(func(context.Context, ...alerting.Alert) ([]alerting.Alert, error) { return nil, boom })
	dropAll := alerting.StageFunc(func(context.Context, ...alerting.Alert) ([]alerting.Alert, error) { return nil, nil })

	if _, err := (alerting.MultiStage{dropAll, counting}).Exec(ctx, alerts...); err != nil || calls != 0 {
		t.Errorf("multi stage went on with no alerts: calls %d err %v", calls, err)
	}
	if _, err := (alerting.MultiStage{failing, counting}).Exec(ctx, alerts...); !errors.Is(err, boom) || calls != 0 {
		t.Errorf("multi stage went on after an error: calls %d err %v", calls, err)
	}
	out, err := (alerting.FanoutStage{counting, failing}).Exec(ctx, alerts...)
	if !errors.Is(err, boom) || len(out) != 2 {
		t.Errorf("fan-out: %d alerts, err %v", len(out), err)
	}

	attempts := 0
	flaky := alerting.SendStage{Notifier: notifierFunc(func() (bool, error) {
		attempts++
		return true, errors.New("503")
	})}
	_, err = alerting.RetryStage{Next: flaky, Policy: fastRetry}.Exec(ctx, alerts...)
	if err == nil || attempts != 3 || !alerting.Retryable(err) {
		t.Errorf("retry: %d attempts, err %v", attempts, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	attempts = 0
	slow := alerting.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Hour, MaxBackoff: time.Hour, MaxElapsed: 10 * time.Hour}
	if _, err := (alerting.RetryStage{Next: flaky, Policy: slow}).Exec(cctx, alerts...); err == nil || attempts != 1 {
		t.Errorf("retry ignored a cancelled context: %d attempts, err %v", attempts, err)
	}
}

type notifierFunc func() (bool, error)

func (f notifierFunc) Notify(context.Context, ...alerting.Alert) (bool, error) { return f() }

// blockingNotifier never finishes until released.
type blockingNotifier struct{ release chan struct{} }

func (n blockingNotifier) Notify(ctx context.Context, _ ...alerting.Alert) (bool, error) {
	select {
	case <-n.release:
	case <-ctx.Done():
	}
	return false, nil
}

func TestSlowNotifierDoesNotDelayEvaluation(t *testing.T) {
	stuck := blockingNotifier{release: make(chan struct{})}
	var release sync.Once
	defer release.Do(func() { close(stuck.release) })
	// Should a pass wait for the notifier, the guard releases it (so the
	// test ends instead of hanging) and the test fails on the flag; the
	// guard is not a figure under test.
	var waited atomic.Bool
	guard := time.AfterFunc(30*time.Second, func() {
		waited.Store(true)
		release.Do(func() { close(stuck.release) })
	})
	d, _ := alerting.NewDispatcher([]alerting.Receiver{{Name: "stuck", Notifier: stuck, QueueSize: 1}}, nil)
	runDispatcher(t, d)

	r := errorSpikeRule()
	r.For, r.KeepFiringFor = 0, 0
	h := newHarness(t, []alerting.Rule{r}, func(o *alerting.Options) { o.Notify = d })
	for i := range 10 { // fire and resolve five times: ten notifications
		errorRate(h, 1000, int64(100*(1-i%2)))
		h.step(tick)
	}
	if !guard.Stop() || waited.Load() {
		t.Fatal("ten passes waited for a stuck notifier")
	}
	waitFor(t, "drops to be counted", func() bool { return h.ev.Stats().Notifiers[0].Dropped > 0 })
	st := h.ev.Stats().Notifiers[0]
	if st.Name != "stuck" || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestErrorsDoNotLeakWebhookSecrets(t *testing.T) {
	srv := newHookServer(t, http.StatusNotFound)
	sl, _ := alerting.NewSlack(alerting.SlackConfig{URL: srv.URL + "/services/T000/B000/secrettoken"})
	_, err := sl.Notify(fixtureContext(), fixtureAlerts()...)
	if err == nil || strings.Contains(err.Error(), "secrettoken") {
		t.Fatalf("error %v", err)
	}
}
