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
	"text/tabwriter"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/demo"
)

// maxBackfillDays is the raw-record retention: older history would be
// deleted as soon as it was written.
const maxBackfillDays = 90

// demoCmd runs apiwarden with the demo upstream, keys and traffic: one
// command on a fresh clone shows every part of the product.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer, version string) error {
	fs := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the dashboard and admin API")
	backfill := fs.Int("backfill-days", 0, "write this many days of history first, so historical views and the unusual-activity alert have data (7 is a good choice)")
	dataDir := fs.String("data", "", "data directory to use and keep (default: a temporary one, removed on exit)")
	rate := fs.Float64("rate", 1, "traffic multiplier: 1 is about 2.6 ordinary requests a second at the evening peak, plus the abusive key")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{"demo takes no arguments, got " + strings.Join(fs.Args(), " ")}
	case *backfill < 0 || *backfill > maxBackfillDays:
		return usageError{fmt.Sprintf("-backfill-days must be between 0 and %d (raw records are kept %d days), got %d", maxBackfillDays, maxBackfillDays, *backfill)}
	case !(*rate > 0 && *rate <= 20):
		return usageError{fmt.Sprintf("-rate must be more than 0 and at most 20, got %v", *rate)}
	}

	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "apiwarden-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	token, err := randomToken()
	if err != nil {
		return err
	}

	// The demo wedding API, in this process on a port of its own.
	upstream := demo.NewUpstream(demo.UpstreamOptions{})
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo upstream: %w", err)
	}
	upSrv := &http.Server{Handler: upstream, ReadHeaderTimeout: 5 * time.Second}
	go upSrv.Serve(upLn)
	defer upSrv.Close()

	cfg, err := demo.Config(demo.ConfigOptions{
		AdminListen: *listen, Upstream: "http://" + upLn.Addr().String(), DataDir: dir, AdminToken: token,
	})
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	if *backfill > 0 {
		fmt.Fprintf(stdout, "Writing %d days of history…\n", *backfill)
	}
	prepared, err := demo.Prepare(ctx, cfg, demo.PrepareOptions{BackfillDays: *backfill, Scale: *rate, Logger: log})
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted during the backfill
		}
		return err
	}
	switch {
	case prepared.Reused && *backfill > 0:
		fmt.Fprintf(stdout, "%s already holds the demo keys: they got new secrets, and no second history was written.\n", dir)
	case *backfill > 0:
		fmt.Fprintf(stdout, "Wrote %d requests from %s to %s in %.1fs.\n", prepared.Backfill.Records,
			prepared.Backfill.From.Format("2006-01-02 15:04"), prepared.Backfill.To.Format("2006-01-02 15:04"), prepared.BackfillTook.Seconds())
	}

	a, err := app.New(cfg, app.Options{Version: version, Logger: log})
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: pick a free address with -listen, e.g. -listen 127.0.0.1:8090", err)
	}
	if err != nil {
		return err
	}
	proxyURL := "http://" + a.Addr()
	gen := demo.NewGenerator(demo.GeneratorOptions{
		Target: proxyURL, Keys: prepared.Keys, Scale: *rate, Incidents: upstream, Logger: log,
	})

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
	printDemoBanner(stdout, a.AdminAddr(), token, proxyURL, "http://"+upLn.Addr().String(), dir, *dataDir == "", *backfill, prepared.Keys)
	genDone := make(chan struct{})
	go func() { gen.Run(ctx); close(genDone) }()

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

// printDemoBanner says where everything is. The lines starting with a
// label and two spaces are stable: tests and scripts read them.
func printDemoBanner(w io.Writer, adminAddr, token, proxyURL, upstreamURL, dir string, temporary bool, backfill int, ks []demo.Key) {
	admin := "http://" + adminAddr
	fmt.Fprintf(w, `
apiwarden demo is running. Press Ctrl-C to stop.

  Dashboard:    %s/ui/
  Admin token:  %s
                (this run's only: sign in to the dashboard with it, or send it as a Bearer token)
  Proxy:        %s
  Upstream:     %s (the demo wedding API, behind the proxy)
`, admin, token, proxyURL, upstreamURL)
	if temporary {
		fmt.Fprintf(w, "  Data:         %s (removed on exit; keep it with -data DIR)\n", dir)
	} else {
		fmt.Fprintf(w, "  Data:         %s\n", dir)
	}

	fmt.Fprintln(w, "\nDemo keys (traffic flows through the proxy with them):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var example string
	for _, k := range ks {
		status := ""
		if k.Key.Status != "active" {
			status = " (" + string(k.Key.Status) + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", k.Key.ID, k.Key.Tier, k.Key.OwnerID, k.Key.Name, status)
		if k.Role == demo.RoleEnterprise {
			example = k.Secret
		}
	}
	tw.Flush()
	if example != "" {
		fmt.Fprintf(w, `
Call the API through apiwarden with the planner suite's key:

  curl -i -H "Authorization: Bearer %s" %s/api/guests/evt_1042
`, example, proxyURL)
	}
	fmt.Fprintf(w, `
Or ask the admin API what it sees:

  curl -H "Authorization: Bearer %s" '%s/admin/v1/alerts?state=firing'

Within a minute: a free-tier script (org_guestsync) hits its rate limit
and monthly quota, an upstream incident starts at 20 s (and every few
minutes after), and photo uploads are slow, so the rate_limit_exceeded,
quota_warning, error_spike and performance_degradation alerts fire.
`, token, admin)
	if backfill == 0 {
		fmt.Fprintln(w, "unusual_activity compares traffic with its history: run with -backfill-days 7 to see it too.")
	}
	fmt.Fprintln(w)
}
