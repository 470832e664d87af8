package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// config check finds a short token however it is given, so a file
// is fixed before serve refuses to start on it.
func TestConfigCheckReportsAShortToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apiwarden.toml")
	if err := os.WriteFile(path, []byte("[security]\nmetrics_token = \"env:METRICS_TOKEN\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := configCmd([]string{"check", "-config", path}, &out, envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": "change-me", "METRICS_TOKEN": "scrape"}))
	if err == nil || !strings.Contains(err.Error(), "2 problem(s)") {
		t.Fatalf("got %v:\n%s", err, out.String())
	}
	for _, want := range []string{
		"security.admin_token must be at least 24 characters, got 9 (from APIWARDEN_ADMIN_TOKEN); make one with `openssl rand -hex 24`",
		"line 2: security.metrics_token must be at least 24 characters, got 6 (from env:METRICS_TOKEN); make one with `openssl rand -hex 24`",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config check does not say %q:\n%s", want, out.String())
		}
	}
}

// demo sets its admin token in code, past config validation: it must be
// as strong as serve demands anyway.
func TestDemoTokenIsLongEnough(t *testing.T) {
	token, err := randomToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(token) < config.MinTokenLength {
		t.Fatalf("demo token %q is shorter than %d characters", token, config.MinTokenLength)
	}
}

// config check says what an unset client_ip keeps, and says nothing once
// the file chooses.
func TestConfigCheckNamesTheClientIPDefault(t *testing.T) {
	env := envOf(map[string]string{"APIWARDEN_ADMIN_TOKEN": strings.Repeat("a", config.MinTokenLength)})
	for _, c := range []struct {
		file     string
		wantNote bool
	}{
		{"[metrics]\nraw_retention_days = 30\n", true},
		{"[metrics]\nclient_ip = \"full\"\n", false},
		{"[metrics]\nclient_ip = \"truncated\"\n", false},
	} {
		path := filepath.Join(t.TempDir(), "apiwarden.toml")
		if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := configCmd([]string{"check", "-config", path}, &out, env); err != nil {
			t.Fatalf("%q: %v\n%s", c.file, err, out.String())
		}
		got := strings.Contains(out.String(), "client addresses in full")
		if got != c.wantNote {
			t.Errorf("%q: note shown %v, want %v:\n%s", c.file, got, c.wantNote, out.String())
		}
	}
}
