package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
)

// lockedBuffer is a log destination safe for the app's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAndStopLog runs an app whose context has already ended and
// returns what it logged on the way in and out.
func startAndStopLog(t *testing.T, cfg *config.Config) string {
	t.Helper()
	logs := &lockedBuffer{}
	a, err := app.New(cfg, app.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return logs.String()
}

// Without a service token, /v1/check, /v1/authorize and /v1/events answer
// loopback clients only: nothing to say on loopback, worth a warning on
// an address other hosts reach, whose callers are refused.
func TestWarnsWhenTheServiceAPIIsOpen(t *testing.T) {
	cases := []struct {
		name, listen, token, upstream string
		warn                          bool
	}{
		{"loopback", "127.0.0.1:0", "", "", false},
		{"all interfaces", "0.0.0.0:0", "", "", true},
		{"all interfaces with a token", "0.0.0.0:0", "svc", "", false},
		{"proxy mode: /v1 is on the loopback admin listener", "0.0.0.0:0", "", "http://127.0.0.1:9", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Server.Listen, cfg.Server.AdminListen = tc.listen, "127.0.0.1:0"
			cfg.Server.DataDir = t.TempDir()
			cfg.Security.AdminToken = "tok"
			cfg.Security.KeySecret = "warn-test-secret-0123456789"
			cfg.Security.ServiceToken = config.Secret(tc.token)
			cfg.Proxy.Upstream = tc.upstream
			log := startAndStopLog(t, cfg)
			if got := strings.Contains(log, "security.service_token is empty"); got != tc.warn {
				t.Fatalf("warned %v, want %v; log:\n%s", got, tc.warn, log)
			}
		})
	}
}
