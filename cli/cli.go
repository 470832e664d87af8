// Package cli is apiwarden's command line: it parses the arguments, runs
// one command and turns its outcome into an exit status.
//
//	apiwarden serve   [-config apiwarden.toml]
//	apiwarden demo    [-listen ADDR] [-backfill-days N]
//	apiwarden keys    create|list|show|rotate|revoke|events ...
//	apiwarden backup  -out FILE
//	apiwarden erase   -key ID | -owner ID [-rollups] [-blank] [-json]
//	apiwarden cluster import [-config FILE] [-from FILE] [-dry-run] [-force]
//	apiwarden healthcheck [-url URL | -config FILE]
//	apiwarden config  check [-config FILE]
//	apiwarden version
//
// Run is the whole program: it takes its arguments, output and
// environment as parameters, so tests run it in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// Exit statuses, the same for every command: scripts and container
// health checks tell a mistake in the command line from a failure by them.
const (
	ExitOK      = 0 // the command did what it was asked
	ExitRuntime = 1 // the command ran and failed
	ExitUsage   = 2 // the command line is wrong; nothing ran
)

// usageError marks a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errHelp is returned after a command printed its -h text.
var errHelp = errors.New("help shown")

const usage = `apiwarden: API keys, rate limits and usage analytics for an HTTP API

Usage:
  apiwarden serve   [-config FILE]          run the service
  apiwarden demo    [-listen ADDR] [-backfill-days N] [-data DIR] [-rate R]
                                            the service with a demo API, keys and traffic
  apiwarden keys    create|list|show|rotate|revoke|events ...
                                            admin client (APIWARDEN_URL, APIWARDEN_ADMIN_TOKEN)
  apiwarden backup  -out FILE               hot backup of a running server's data file
  apiwarden erase   -key ID | -owner ID [-rollups] [-blank]
                                            erase a key's or owner's usage data on a running server
  apiwarden cluster import [-config FILE] [-from FILE] [-dry-run] [-force]
                                            copy a stopped single instance's keys into the cluster
  apiwarden healthcheck [-url URL | -config FILE]   exit 0 when /readyz answers 200
  apiwarden config  check [-config FILE]    validate a configuration file
  apiwarden version

Run "apiwarden <command> -h" for a command's flags.
`

// Run runs the command args names and returns the exit status. Errors go
// to stderr prefixed "apiwarden:"; a command's output goes to stdout.
// getenv reads the environment (APIWARDEN_URL, APIWARDEN_ADMIN_TOKEN, and
// the env: references of a configuration file). version is the binary's
// build version, "dev" when none was set: `version` prints it and serve
// reports it. Run returns when the command is done; serve and demo run
// until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, version string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	version = buildVersion(version)
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serveCmd(ctx, rest, stderr, getenv, version)
	case "demo":
		err = demoCmd(ctx, rest, stdout, stderr, version)
	case "keys":
		err = keysCmd(ctx, rest, stdout, getenv)
	case "config":
		err = configCmd(rest, stdout, getenv)
	case "backup":
		err = backupCmd(ctx, rest, stdout, getenv)
	case "erase":
		err = eraseCmd(ctx, rest, stdout, getenv)
	case "cluster":
		err = clusterCmd(ctx, rest, stdout, getenv)
	case "healthcheck":
		err = healthcheckCmd(ctx, rest, stdout, getenv)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "apiwarden", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = usageError{fmt.Sprintf("unknown command %q\n\n%s", cmd, usage)}
	}
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "apiwarden:", ue.msg)
		return ExitUsage
	default:
		fmt.Fprintln(stderr, "apiwarden:", err)
		return ExitRuntime
	}
}

// buildVersion is the -ldflags version, or the VCS revision Go recorded
// when there is none.
func buildVersion(version string) string {
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
