package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
)

// serveCmd runs the service on the -config file (built-in defaults
// without one) until ctx ends, and reloads that file on SIGHUP.
func serveCmd(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string, version string) error {
	fs := newFlags("serve", stderr)
	configPath := fs.String("config", "", "configuration file (default: built-in defaults)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"serve takes no arguments, got " + strings.Join(fs.Args(), " ")}
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	log.Info("starting apiwarden", "version", version, "config", orDefault(*configPath, "(built-in defaults)"))
	a, err := app.New(cfg, app.Options{Version: version, Logger: log})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHangup(ctx, hup, a, *configPath, getenv, log)
	return a.Run(ctx)
}

// reloadOnHangup re-reads the configuration file on every SIGHUP. A file
// that does not load is rejected with its problems logged, and the
// running configuration stays in force.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, a *app.App, path string, getenv func(string) string, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if path == "" {
			log.Warn("SIGHUP ignored: serve was started without -config")
			continue
		}
		cfg, err := config.Load(path, getenv)
		if err == nil {
			err = a.Reload(cfg)
		}
		if err != nil {
			log.Error("configuration reload rejected; the previous configuration stays in force", "file", path, "err", err)
		}
	}
}

// newLogger logs to w at the configuration's level, as text or, with
// log_format "json", as JSON.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Server.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Server.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
