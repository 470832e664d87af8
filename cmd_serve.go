package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"

	_ "time/tzdata" // calendar time zones work in minimal containers too
)

// errHelp is returned after a command printed its -h text.
var errHelp = errors.New("help shown")

// newFlags makes a flag set whose errors come back as usage errors.
func newFlags(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// parseFlags parses flags before, between and after positional
// arguments ("keys rotate ID -grace 1h"), which the flag package alone
// stops at; the positional ones are left in fs.Args().
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelp
			}
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

func serveCmd(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
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
	log.Info("starting apiwarden", "version", buildVersion(), "config", orDefault(*configPath, "(built-in defaults)"))
	a, err := app.New(cfg, app.Options{Version: buildVersion(), Logger: log})
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

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Server.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Server.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func configCmd(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{"usage: apiwarden config check [-config FILE]"}
	}
	fs := newFlags("config check", stdout)
	configPath := fs.String("config", "apiwarden.toml", "configuration file to check")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	_, err := config.Load(*configPath, getenv)
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
	return nil
}

// buildVersion is the -ldflags version, or the VCS revision Go recorded.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev+" + s.Value[:12]
			}
		}
	}
	return version
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
