package demo

import (
	_ "embed"
	"fmt"

	"github.com/apiwarden/apiwarden/config"
)

// configTOML is the demo's configuration file: the demo API's routes and
// alert rules, decoded over the defaults by Config.
//
//go:embed config.toml
var configTOML []byte

// ConfigOptions are what Config cannot choose itself.
type ConfigOptions struct {
	// AdminListen serves the admin API and the dashboard.
	AdminListen string
	// Upstream is the demo API's base URL, for the proxy.
	Upstream string
	// DataDir holds the data file and the generated key secret.
	DataDir string
	// AdminToken is the run's admin token.
	AdminToken string
}

// Config returns the configuration the demo runs apiwarden with: the
// built-in defaults with config.toml decoded over them (so it is checked
// as strictly as any file), the proxy on an ephemeral loopback port in
// front of o.Upstream, and the secrets set directly: the admin token
// from o, the key secret left empty so that the app keeps a generated one
// in the data directory (which Prepare reads too).
func Config(o ConfigOptions) (*config.Config, error) {
	cfg, err := config.Parse(configTOML, "demo/config.toml")
	if err != nil {
		return nil, fmt.Errorf("demo: built-in configuration: %w", err)
	}
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AdminListen = o.AdminListen
	cfg.Server.DataDir = o.DataDir
	cfg.Proxy.Upstream = o.Upstream
	cfg.Security.AdminToken = config.Secret(o.AdminToken)
	cfg.Security.KeySecret = ""
	cfg.Security.ServiceToken = ""
	cfg.Redis.URL = ""
	return cfg, nil
}
