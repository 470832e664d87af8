// Command apiwarden gives an HTTP API keys, tiered rate limits, usage
// analytics, alerts and a dashboard, from one binary and one data file.
// The commands live in package cli; this file only connects them to the
// process: arguments, signals, environment and exit status.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/apiwarden/apiwarden/cli"

	_ "time/tzdata" // calendar time zones work in minimal containers too
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is the whole program with this build's version; it returns the
// exit status. The end-to-end tests beside this file call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return cli.Run(ctx, args, stdout, stderr, getenv, version)
}
