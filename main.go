// Command apiwarden gives an HTTP API keys, tiered rate limits, usage
// analytics, alerts and a dashboard, from one binary and one data file.
//
//	apiwarden serve   [-config apiwarden.toml]
//	apiwarden demo    [-listen ADDR] [-backfill-days N]
//	apiwarden keys    create|list|show|rotate|revoke|events ...
//	apiwarden backup  -out FILE
//	apiwarden healthcheck [-url URL | -config FILE]
//	apiwarden config  check [-config FILE]
//	apiwarden version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit statuses (SPEC §2).
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// usageError marks a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `apiwarden: API keys, rate limits and usage analytics for an HTTP API

Usage:
  apiwarden serve   [-config FILE]          run the service
  apiwarden demo    [-listen ADDR] [-backfill-days N] [-data DIR] [-rate R]
                                            the service with a demo API, keys and traffic
  apiwarden keys    create|list|show|rotate|revoke|events ...
                                            admin client (APIWARDEN_URL, APIWARDEN_ADMIN_TOKEN)
  apiwarden backup  -out FILE               hot backup of a running server's data file
  apiwarden healthcheck [-url URL | -config FILE]   exit 0 when /readyz answers 200
  apiwarden config  check [-config FILE]    validate a configuration file
  apiwarden version

Run "apiwarden <command> -h" for a command's flags.
`

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serveCmd(ctx, rest, stderr, getenv)
	case "demo":
		err = demoCmd(ctx, rest, stdout, stderr)
	case "keys":
		err = keysCmd(ctx, rest, stdout, getenv)
	case "config":
		err = configCmd(rest, stdout, getenv)
	case "backup":
		err = backupCmd(ctx, rest, stdout, getenv)
	case "healthcheck":
		err = healthcheckCmd(ctx, rest, stdout, getenv)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "apiwarden", buildVersion())
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = usageError{fmt.Sprintf("unknown command %q\n\n%s", cmd, usage)}
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "apiwarden:", ue.msg)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "apiwarden:", err)
		return exitRuntime
	}
}
