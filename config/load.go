package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/BurntSushi/toml"
)

// Load reads the file at path over the defaults, validates it, resolves
// env:/file: secret references and applies the environment overrides
// APIWARDEN_ADMIN_TOKEN and APIWARDEN_KEY_SECRET. An empty path means the
// defaults alone. getenv is os.Getenv outside tests.
//
// A file that cannot be read is an error wrapping the os error; a file
// with problems returns Problems (errors.Is(err, ErrInvalid)) listing all
// of them in line order.
func Load(path string, getenv func(string) string) (*Config, error) {
	cfg := Default()
	var lines lineIndex
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if cfg, lines, err = parse(data, path); err != nil {
			return nil, err
		}
	}
	pl := &problemList{file: path, lines: lines}
	cfg.resolveSecrets(pl, getenv)
	cfg.resolveInstanceID(pl, getenv)
	cfg.validateClusterResolved(pl)
	if len(pl.list) > 0 {
		return nil, pl.list.sorted()
	}
	return cfg, nil
}

// Parse decodes TOML text over the defaults and validates it, leaving
// secret references unresolved. name labels problems (a file name).
func Parse(data []byte, name string) (*Config, error) {
	cfg, _, err := parse(data, name)
	return cfg, err
}

func parse(data []byte, name string) (*Config, lineIndex, error) {
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, nil, Problems{{File: name, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message}}
		}
		return nil, nil, Problems{{File: name, Msg: "syntax error: " + err.Error()}}
	}
	cfg := Default()
	pl := &problemList{file: name, lines: indexLines(string(data))}
	pl.decodeInto("", tree, reflect.ValueOf(cfg).Elem())
	cfg.validate(pl)
	if len(pl.list) > 0 {
		return nil, nil, pl.list.sorted()
	}
	return cfg, pl.lines, nil
}

// resolveSecrets replaces env:/file: references with their values,
// applies the environment overrides and then checks the tokens' length,
// naming where a short one came from when the file does not hold it.
func (c *Config) resolveSecrets(pl *problemList, getenv func(string) string) {
	resolve := func(key string, s *Secret) {
		v, err := s.resolve(getenv)
		if err != nil {
			pl.add(key, "%v", err)
			return
		}
		*s = v
	}
	tokens := c.tokens()
	from := make([]string, len(tokens))
	for i, t := range tokens {
		if isReference(string(*t.value)) {
			from[i] = string(*t.value)
		}
	}
	resolve("security.admin_token", &c.Security.AdminToken)
	resolve("security.key_secret", &c.Security.KeySecret)
	resolve("security.service_token", &c.Security.ServiceToken)
	resolve("security.metrics_token", &c.Security.MetricsToken)
	resolve("redis.url", &c.Redis.URL)
	resolve("cluster.postgres_url", &c.Cluster.PostgresURL)
	for i := range c.Alerts.Notify {
		n := &c.Alerts.Notify[i]
		resolve(fmt.Sprintf("alerts.notify[%d].url", i), &n.URL)
		resolve(fmt.Sprintf("alerts.notify[%d].smtp_password", i), &n.SMTPPassword)
	}
	if v := getenv("APIWARDEN_ADMIN_TOKEN"); v != "" {
		c.Security.AdminToken = Secret(v)
		from[0] = "APIWARDEN_ADMIN_TOKEN"
	}
	if v := getenv("APIWARDEN_KEY_SECRET"); v != "" {
		c.Security.KeySecret = Secret(v)
	}
	for i, t := range tokens {
		checkTokenLength(pl, t.key, *t.value, from[i])
	}
}
