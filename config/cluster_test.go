package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/config"
)

// [cluster] is checked before and after secrets are resolved: a literal
// URL at parse time, a referenced one once its value is known, and cluster
// mode needs a key secret every instance can share. Without postgres_url
// nothing new is required.
func TestClusterSection(t *testing.T) {
	cases := []struct {
		name string
		toml string
		env  map[string]string
		want string // a substring of the problems; "" for none
	}{
		{"absent: single instance, nothing required", "", nil, ""},
		{"literal URL", "[cluster]\npostgres_url = \"postgres://aw@db:5432/aw\"\ninstance_id = \"pod-1\"\n",
			map[string]string{"APIWARDEN_KEY_SECRET": "0123456789abcdef0123"}, ""},
		{"env reference", "[cluster]\npostgres_url = \"env:PG\"\n",
			map[string]string{"PG": "postgres://aw:pw@db/aw?sslmode=require", "APIWARDEN_KEY_SECRET": "0123456789abcdef0123"}, ""},
		{"unset env reference: single instance", "[cluster]\npostgres_url = \"env:PG\"\n", nil, ""},
		{"literal URL pgx cannot parse", "[cluster]\npostgres_url = \"postgres://aw:secretpw@db:notaport/aw\"\n", nil,
			"line 2: cluster.postgres_url must be a PostgreSQL URL"},
		{"referenced URL pgx cannot parse", "[cluster]\npostgres_url = \"env:PG\"\n",
			map[string]string{"PG": "postgres://aw:secretpw@db:notaport/aw", "APIWARDEN_KEY_SECRET": "0123456789abcdef0123"},
			"cluster.postgres_url must be a PostgreSQL URL"},
		{"no shared key secret", "[cluster]\npostgres_url = \"postgres://aw@db/aw\"\n", nil,
			"security.key_secret must be set when cluster.postgres_url is"},
		{"bad instance id", "[cluster]\ninstance_id = \"pod 1!\"\n", nil,
			"line 2: cluster.instance_id must be 1 to 63 letters"},
		{"spool bound", "[cluster]\nspool_max_records = 1000\n", nil, ""},
		{"no spool", "[cluster]\nspool_max_records = 0\n", nil,
			"line 2: cluster.spool_max_records must be at least 1, got 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(file, []byte(tc.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(file, func(k string) string { return tc.env[k] })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := cfg.Cluster.PostgresURL.Value(); (got == "") != (tc.env["PG"] == "" && !strings.Contains(tc.toml, "postgres://")) {
					t.Fatalf("postgres_url = %q after resolving", got)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a problem containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("the message repeats the password: %v", err)
			}
		})
	}
}

// A referenced URL is resolved like every other secret.
func TestClusterURLResolved(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	_ = os.WriteFile(file, []byte("[cluster]\npostgres_url = \"env:PG\"\n"), 0o600)
	env := map[string]string{"PG": "postgres://aw@db/aw", "APIWARDEN_KEY_SECRET": "0123456789abcdef0123"}
	cfg, err := config.Load(file, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Cluster.PostgresURL.Value(); got != "postgres://aw@db/aw" {
		t.Fatalf("postgres_url = %q", got)
	}
	if got := cfg.Cluster.PostgresURL.String(); got != "(secret)" {
		t.Fatalf("String() = %q, want it hidden", got)
	}
}

// instance_id may name an environment variable, so a Deployment can pass
// the pod's name through the downward API; the resolved name is checked
// like a literal one, and a reference to an unset variable is refused
// rather than silently falling back to the host name.
func TestClusterInstanceIDFromEnv(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string // the resolved id, or a substring of the problem
		ok   bool
	}{
		{"set", map[string]string{"POD_NAME": "api-7d9c-x2k4q"}, "api-7d9c-x2k4q", true},
		{"unset", nil, "cluster.instance_id names env:POD_NAME, which is not set", false},
		{"bad name", map[string]string{"POD_NAME": "pod 1!"}, "cluster.instance_id must be 1 to 63 letters", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.toml")
			_ = os.WriteFile(file, []byte("[cluster]\ninstance_id = \"env:POD_NAME\"\n"), 0o600)
			cfg, err := config.Load(file, func(k string) string { return tc.env[k] })
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if cfg.Cluster.InstanceID != tc.want {
					t.Fatalf("instance_id = %q, want %q", cfg.Cluster.InstanceID, tc.want)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a problem containing %q", err, tc.want)
			}
		})
	}
}
