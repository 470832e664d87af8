package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

func noEnv(string) string { return "" }

// The example file is the documentation of every default: it must load
// and equal Default() exactly.
func TestExampleEqualsDefaults(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse(data, "config.example.toml")
	if err != nil {
		t.Fatalf("config.example.toml does not load:\n%v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("config.example.toml differs from Default():\n got %+v\nwant %+v", got, want)
	}
}

// Every setting in the schema appears in the example, set or commented.
func TestExampleDocumentsEveryOption(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := f.Tag.Get("toml")
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
				if ft.Elem().Kind() != reflect.Struct {
					break
				}
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
				walk(prefix+name+".", ft)
				continue
			}
			re := regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(name) + ` = `)
			if !re.MatchString(text) {
				t.Errorf("config.example.toml does not document %s%s", prefix, name)
			}
		}
	}
	walk("", reflect.TypeOf(config.Config{}))
}

// Invalid files produce every problem with its line; the expected output
// is kept in golden files (go test ./config -update rewrites them).
func TestInvalidFilesGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, _ := os.ReadFile(file)
			_, err := config.Parse(data, filepath.Base(file))
			if err == nil {
				t.Fatal("invalid file accepted")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			golden := strings.TrimSuffix(file, ".toml") + ".golden"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := os.ReadFile(golden)
			if got != string(want) {
				t.Errorf("problems differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestProblemsCarryLineAndKey(t *testing.T) {
	src := "[server]\nlisten = \"127.0.0.1:9\"\n\n[tiers.free]\nrequests_per_hour = -5\n"
	_, err := config.Parse([]byte(src), "x.toml")
	var ps config.Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("got %v", err)
	}
	want := config.Problem{File: "x.toml", Line: 5, Key: "tiers.free.requests_per_hour", Msg: "must be > 0, got -5"}
	if ps[0] != want {
		t.Fatalf("got %+v, want %+v", ps[0], want)
	}
	if s := ps[0].String(); s != "config: x.toml: line 5: tiers.free.requests_per_hour must be > 0, got -5" {
		t.Fatalf("message %q", s)
	}
}

func TestOverridesAndSecrets(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "token")
	if err := os.WriteFile(secretFile, []byte("admin-token-from-a-file-0123\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "a.toml")
	body := "[security]\nadmin_token = \"file:" + secretFile + "\"\nkey_secret = \"env:MY_PEPPER\"\nservice_token = \"literal-service-token-0123\"\n"
	if err := os.WriteFile(cfgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name               string
		env                map[string]string
		admin, pepper, svc string
	}{
		{"references", map[string]string{"MY_PEPPER": "pepper"}, "admin-token-from-a-file-0123", "pepper", "literal-service-token-0123"},
		{"env overrides win", map[string]string{"MY_PEPPER": "pepper", "APIWARDEN_ADMIN_TOKEN": "admin-token-from-the-env-0123", "APIWARDEN_KEY_SECRET": "k2"},
			"admin-token-from-the-env-0123", "k2", "literal-service-token-0123"},
		{"unset env is empty", nil, "admin-token-from-a-file-0123", "", "literal-service-token-0123"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(cfgFile, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Security.AdminToken.Value(); got != tc.admin {
				t.Errorf("admin token %q, want %q", got, tc.admin)
			}
			if got := cfg.Security.KeySecret.Value(); got != tc.pepper {
				t.Errorf("key secret %q, want %q", got, tc.pepper)
			}
			if got := cfg.Security.ServiceToken.Value(); got != tc.svc {
				t.Errorf("service token %q, want %q", got, tc.svc)
			}
		})
	}
}

func TestMissingSecretFileNamesKeyAndLine(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "a.toml")
	_ = os.WriteFile(cfgFile, []byte("[security]\n\nadmin_token = \"file:/nonexistent/token\"\n"), 0o600)
	_, err := config.Load(cfgFile, noEnv)
	if err == nil || !strings.Contains(err.Error(), "line 3: security.admin_token cannot read secret file") {
		t.Fatalf("got %v", err)
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	s := config.Secret("hunter2")
	if got := s.String(); strings.Contains(got, "hunter2") {
		t.Fatalf("secret printed: %q", got)
	}
}

func TestLoadWithoutFileIsDefaults(t *testing.T) {
	cfg, err := config.Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Listen != "127.0.0.1:8080" || cfg.Server.AdminListen != "127.0.0.1:8081" || cfg.Server.DataDir != "./data" {
		t.Fatalf("defaults: %+v", cfg.Server)
	}
}

func TestFileOverridesOneFieldOfABuiltinTier(t *testing.T) {
	cfg, err := config.Parse([]byte("[tiers.free]\nrequests_per_hour = 250\n\n[tiers.gold]\nrequests_per_hour = 1\nburst_per_minute = 1\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Tiers["free"]; got.RequestsPerHour != 250 || got.BurstPerMinute != 10 {
		t.Errorf("free = %+v, want 250/h with the default burst 10", got)
	}
	if len(cfg.Tiers) != 5 {
		t.Errorf("tiers %v, want the four built-in ones and gold", cfg.Tiers)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.toml"), noEnv)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

// Sizes read as GOMEMLIMIT writes them, and write back the same way.
func TestSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want config.Size
		ok   bool
	}{
		{"0", 0, true},
		{"200MiB", 200 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1536KiB", 1536 << 10, true},
		{"4096B", 4096, true},
		{"200MB", 0, false},
		{"200", 0, false},
		{"-1MiB", 0, false},
		{"1.5GiB", 0, false},
		{"MiB", 0, false},
		{"9999999999TiB", 0, false},
	} {
		var s config.Size
		err := s.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && s != tc.want) {
			t.Errorf("%q: %d, %v; want %d, ok %v", tc.in, s, err, tc.want, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		var back config.Size
		if b, _ := s.MarshalText(); back.UnmarshalText(b) != nil || back != s {
			t.Errorf("%q wrote %q, read back %d", tc.in, b, back)
		}
	}
}
