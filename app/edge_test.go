package app_test

import (
	"strings"
	"testing"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
)

// A configuration built in code, which skips config validation, cannot
// put the fasthttp edge where it would serve the proxy or the admin
// routes either.
func TestFastHTTPEdgeOnlyForForwardAuthListener(t *testing.T) {
	for name, mutate := range map[string]func(*config.Config){
		"with a proxy": func(c *config.Config) { c.Proxy.Upstream = "http://127.0.0.1:1" },
		// Equal addresses but port 0 are two listeners (tests use them).
		"on a shared listener": func(c *config.Config) { c.Server.Listen, c.Server.AdminListen = "127.0.0.1:38999", "127.0.0.1:38999" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Server.Listen, cfg.Server.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
			cfg.Server.DataDir = t.TempDir()
			cfg.Security.AdminToken, cfg.Security.KeySecret = "tok", "edge-test-secret-0123456789"
			cfg.Server.Edge = config.EdgeFastHTTP
			mutate(cfg)
			_, err := app.New(cfg, app.Options{})
			if err == nil {
				t.Fatal("app.New accepted the fasthttp edge")
			}
			if !strings.Contains(err.Error(), `server.edge "fasthttp"`) {
				t.Fatalf("error %q does not name server.edge", err)
			}
		})
	}
}
