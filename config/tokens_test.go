package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// A guessable token is refused at start, wherever it comes from, with
// the key, its line when the file holds it, and how to make a good one.
func TestShortTokensAreRefused(t *testing.T) {
	dir := t.TempDir()
	shortFile := filepath.Join(dir, "metrics-token")
	if err := os.WriteFile(shortFile, []byte("scrape\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", config.MinTokenLength)
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string // substrings of the one problem; none: loads
	}{
		{"admin token in the file", "[security]\nadmin_token = \"change-me\"\n", nil,
			[]string{"line 2: security.admin_token", "at least 24 characters", "got 9", "openssl rand -hex 24"}},
		{"admin token from APIWARDEN_ADMIN_TOKEN", "", map[string]string{"APIWARDEN_ADMIN_TOKEN": "change-me"},
			[]string{"security.admin_token", "APIWARDEN_ADMIN_TOKEN", "openssl rand -hex 24"}},
		{"service token from an env reference", "[security]\nservice_token = \"env:SVC\"\n", map[string]string{"SVC": "svc"},
			[]string{"line 2: security.service_token", "env:SVC", "openssl rand -hex 24"}},
		{"metrics token from a file", "[security]\n\nmetrics_token = \"file:" + shortFile + "\"\n", nil,
			[]string{"line 3: security.metrics_token", "got 6", "openssl rand -hex 24"}},
		{"23 characters", "[security]\nservice_token = \"" + long[1:] + "\"\n", nil, []string{"got 23"}},
		{"24 characters", "[security]\nservice_token = \"" + long + "\"\nmetrics_token = \"" + long + "\"\n",
			map[string]string{"APIWARDEN_ADMIN_TOKEN": long}, nil},
		{"empty tokens turn their feature off", "[security]\nservice_token = \"\"\n", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = filepath.Join(t.TempDir(), "apiwarden.toml")
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := config.Load(path, func(k string) string { return tc.env[k] })
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) != 1 {
				t.Fatalf("got %v, want one problem", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(ps[0].String(), w) {
					t.Errorf("%q does not say %q", ps[0].String(), w)
				}
			}
		})
	}
}

// config check reads a file without resolving its references, so
// a literal short token in the file is found there too.
func TestParseRefusesAShortLiteralToken(t *testing.T) {
	_, err := config.Parse([]byte("[security]\nservice_token = \"short\"\n"), "x.toml")
	if err == nil || !strings.Contains(err.Error(), "x.toml: line 2: security.service_token must be at least 24 characters") {
		t.Fatalf("got %v", err)
	}
	if _, err := config.Parse([]byte("[security]\nservice_token = \"env:SHORT\"\n"), "x.toml"); err != nil {
		t.Fatalf("a reference is checked once resolved, by Load: %v", err)
	}
}
