package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/apiwarden/apiwarden/config"
)

// configCmd is `config check`: it loads a configuration file as serve
// would and prints every problem it has, one a line.
func configCmd(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{"usage: apiwarden config check [-config FILE]"}
	}
	fs := newFlags("config check", stdout)
	configPath := fs.String("config", "apiwarden.toml", "configuration file to check")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, getenv)
	var problems config.Problems
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintln(stdout, p.String())
		}
		return fmt.Errorf("%s: %d problem(s)", *configPath, len(problems))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK\n", *configPath)
	if cfg.Metrics.ClientIP == "" {
		// Client addresses are personal data in most of the world: say
		// what the default keeps, since the file does not.
		fmt.Fprintln(stdout, `note: metrics.client_ip is not set, so request records store client addresses in full; set "truncated" or "none" to keep less (docs/privacy.md)`)
	}
	return nil
}
