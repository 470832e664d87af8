package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/demo"
)

// maxBackfillDays is the raw-record retention: older history would be
// deleted as soon as it was written.
const maxBackfillDays = 90

// demoOptions are the demo command's flags.
type demoOptions struct {
	listen       string  // address of the dashboard and admin API
	backfillDays int     // days of history to write first; 0 for none
	dataDir      string  // data directory to keep; "" for a temporary one
	rate         float64 // traffic multiplier
}

// demoCmd runs apiwarden with the demo upstream, keys and traffic: one
// command on a fresh clone shows every part of the product.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer, version string) error {
	opts, err := parseDemoFlags(args, stderr)
	if err != nil {
		return err
	}
	dir, removeDir, err := demoDataDir(opts.dataDir)
	if err != nil {
		return err
	}
	defer removeDir()
	token, err := randomToken()
	if err != nil {
		return err
	}
	upstream, upstreamURL, stopUpstream, err := startDemoUpstream()
	if err != nil {
		return err
	}
	defer stopUpstream()

	cfg, err := demo.Config(demo.ConfigOptions{
		AdminListen: opts.listen, Upstream: upstreamURL, DataDir: dir, AdminToken: token,
	})
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	if opts.backfillDays > 0 {
		fmt.Fprintf(stdout, "Writing %d days of history…\n", opts.backfillDays)
	}
	prepared, err := demo.Prepare(ctx, cfg, demo.PrepareOptions{BackfillDays: opts.backfillDays, Scale: opts.rate, Logger: log})
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted during the backfill
		}
		return err
	}
	printBackfill(stdout, dir, opts.backfillDays, prepared)

	a, err := app.New(cfg, app.Options{Version: version, Logger: log})
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: pick a free address with -listen, e.g. -listen 127.0.0.1:8090", err)
	}
	if err != nil {
		return err
	}
	proxyURL := "http://" + a.Addr()
	gen := demo.NewGenerator(demo.GeneratorOptions{
		Target: proxyURL, Keys: prepared.Keys, Scale: opts.rate, Incidents: upstream, Logger: log,
	})
	return runDemo(ctx, stdout, a, gen, func() {
		printDemoBanner(stdout, a.AdminAddr(), token, proxyURL, upstreamURL, dir, opts.dataDir == "", opts.backfillDays, prepared.Keys)
	})
}

// parseDemoFlags reads the demo command's flags; values out of range are
// usage errors.
func parseDemoFlags(args []string, stderr io.Writer) (demoOptions, error) {
	fs := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the dashboard and admin API")
	backfill := fs.Int("backfill-days", 0, "write this many days of history first, so historical views and the unusual-activity alert have data (7 is a good choice)")
	dataDir := fs.String("data", "", "data directory to use and keep (default: a temporary one, removed on exit)")
	rate := fs.Float64("rate", 1, "traffic multiplier: 1 is about 2.6 ordinary requests a second at the evening peak, plus the abusive key")
	if err := parseFlags(fs, args); err != nil {
		return demoOptions{}, err
	}
	switch {
	case fs.NArg() > 0:
		return demoOptions{}, usageError{"demo takes no arguments, got " + strings.Join(fs.Args(), " ")}
	case *backfill < 0 || *backfill > maxBackfillDays:
		return demoOptions{}, usageError{fmt.Sprintf("-backfill-days must be between 0 and %d (raw records are kept %d days), got %d", maxBackfillDays, maxBackfillDays, *backfill)}
	case !(*rate > 0 && *rate <= 20):
		return demoOptions{}, usageError{fmt.Sprintf("-rate must be more than 0 and at most 20, got %v", *rate)}
	}
	return demoOptions{listen: *listen, backfillDays: *backfill, dataDir: *dataDir, rate: *rate}, nil
}

// demoDataDir makes the data directory: dir, kept after the demo, or a
// new temporary one when dir is "". remove deletes a temporary one and
// does nothing for dir.
func demoDataDir(dir string) (path string, remove func(), err error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o700)
	}
	tmp, err := os.MkdirTemp("", "apiwarden-demo-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// startDemoUpstream serves the demo wedding API in this process, on a
// loopback port of its own, until stop is called.
func startDemoUpstream() (upstream *demo.Upstream, url string, stop func(), err error) {
	upstream = demo.NewUpstream(demo.UpstreamOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, fmt.Errorf("demo upstream: %w", err)
	}
	srv := &http.Server{Handler: upstream, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return upstream, "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// printBackfill says what Prepare wrote, when -backfill-days asked for
// history.
func printBackfill(stdout io.Writer, dir string, backfillDays int, prepared demo.Prepared) {
	switch {
	case prepared.Reused && backfillDays > 0:
		fmt.Fprintf(stdout, "%s already holds the demo keys: they got new secrets, and no second history was written.\n", dir)
	case backfillDays > 0:
		fmt.Fprintf(stdout, "Wrote %d requests from %s to %s in %.1fs.\n", prepared.Backfill.Records,
			prepared.Backfill.From.Format("2006-01-02 15:04"), prepared.Backfill.To.Format("2006-01-02 15:04"), prepared.BackfillTook.Seconds())
	}
}

// runDemo runs the app and, once it is ready and started has printed the
// banner, the traffic generator, until ctx ends or the app stops. It
// returns the app's error; an interruption is no error.
func runDemo(ctx context.Context, stdout io.Writer, a *app.App, gen *demo.Generator, started func()) error {
	// Ctrl-C stops the traffic first, so that the app drains nothing but
	// the requests already in flight, then the app, then the upstream.
	appCtx, stopApp := context.WithCancel(context.Background())
	defer stopApp()
	appDone := make(chan error, 1)
	go func() { appDone <- a.Run(appCtx) }()
	if err := waitAppReady(ctx, "http://"+a.AdminAddr()+"/readyz", appDone); err != nil {
		stopApp()
		<-appDone
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	started()
	genDone := make(chan struct{})
	go func() { gen.Run(ctx); close(genDone) }()

	var err error
	select {
	case <-ctx.Done():
		err = nil
	case err = <-appDone:
		appDone <- err
	}
	gen.Stop()
	<-genDone
	stopApp()
	if runErr := <-appDone; err == nil {
		err = runErr
	}
	st := gen.Stats()
	fmt.Fprintf(stdout, "\nDemo stopped after sending %d requests.\n", st.Sent)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// waitAppReady polls url until it answers 200: the app has bound its
// listeners in New, but answers 503 until Run has started everything.
func waitAppReady(ctx context.Context, url string, appDone chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-appDone:
			appDone <- err
			if err == nil {
				err = errors.New("the app stopped before it was ready")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within 30 s", url)
		}
	}
}

// randomToken is a one-time admin token: 128 random bits in hex.
func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "demo_" + hex.EncodeToString(b), nil
}
