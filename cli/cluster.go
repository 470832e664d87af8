package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/store"
)

const clusterImportHelp = `usage: apiwarden cluster import [-config FILE] [-from FILE] [-instance-id ID] [-dry-run] [-force]

Copies a single instance's keys (with their hashes: existing secrets keep
working), their audit events, its alerts (open and resolved, with their
acknowledgements and history), with [redis] set its bucket states, and
its request records and rollups from its data file into the cluster's
PostgreSQL ([cluster] postgres_url) and Redis. Records and rollups are
imported as the data file's instance id (-instance-id; default
cluster.instance_id, else the host name): the id the instance on this
data file ships as once it joins the cluster, so neither is ever counted
twice. Stop the single instance first, or import a backup of its data
file (apiwarden backup -out FILE; then -from FILE): a data file in use by
a running apiwarden is refused. security.key_secret must be the one the
single instance used. Running it again changes nothing. A key or alert
the cluster holds with other contents, or an open alert whose rule and
subject the cluster has open already, is a conflict, left as it is
unless -force (which resolves the cluster's open alert in favour of the
data file's).

`

// clusterCmd is `cluster import`.
func clusterCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "import" {
		return usageError{strings.TrimSpace(strings.SplitN(clusterImportHelp, "\n", 2)[0])}
	}
	fs := newFlags("cluster import", stdout)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), clusterImportHelp)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "apiwarden.toml", "configuration file: [cluster], security.key_secret, server.data_dir, [redis]")
	from := fs.String("from", "", "data file to import (default: <data_dir>/apiwarden.db); a backup, or a stopped instance's")
	dryRun := fs.Bool("dry-run", false, "compare with the cluster and report what would be imported; write nothing")
	force := fs.Bool("force", false, "replace keys and alerts the cluster holds with other contents by the data file's")
	every := fs.Int("progress-every", 1000, "print a progress line every N keys, alerts or bucket states")
	instanceID := fs.String("instance-id", "", "the data file's instance id, for its records and rollups (default: cluster.instance_id, else the host name)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 || *every < 1 {
		return usageError{strings.TrimSpace(strings.SplitN(clusterImportHelp, "\n", 2)[0])}
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return err
	}
	url := cfg.Cluster.PostgresURL.Value()
	if url == "" {
		return fmt.Errorf("%s: [cluster] postgres_url is not set: there is no cluster to import into", *configPath)
	}
	if *instanceID == "" {
		if *instanceID, err = app.InstanceID(cfg); err != nil {
			return err
		}
	}
	path := *from
	if path == "" {
		path = filepath.Join(cfg.Server.DataDir, store.FileName)
	}
	src, err := store.OpenReadOnly(path, store.Options{LockTimeout: time.Second})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w\nstop that apiwarden first, or import a backup of its data file: apiwarden backup -out FILE, then apiwarden cluster import -from FILE", err)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	redis, err := importRedis(ctx, cfg)
	if err != nil {
		return err
	}
	if redis != nil {
		defer redis.Close()
	}
	c, err := cluster.Open(ctx, cluster.Options{URL: url, InstanceID: "import",
		KeySecretCheck: keys.SecretCheck([]byte(cfg.Security.KeySecret.Value()))})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stdout, "importing %s into the cluster's PostgreSQL\n", path)
	report, err := c.Import(ctx, src, cluster.ImportOptions{
		DryRun: *dryRun, Force: *force, Redis: redis, Progress: stdout, ProgressEvery: *every, InstanceID: *instanceID})
	printImportSummary(stdout, report)
	if err != nil {
		return err
	}
	if n := report.Conflicts(); n > 0 {
		return fmt.Errorf("%d conflict(s) left as the cluster has them; run again with -force to replace them with the data file's records", n)
	}
	return nil
}

// importRedis is the cluster's shared buckets when [redis] is set, with
// the tiers and calendar serve uses, or nil. It fails when Redis does not
// answer: the import would otherwise leave the buckets out unnoticed.
func importRedis(ctx context.Context, cfg *config.Config) (*limiter.Redis, error) {
	url := cfg.Redis.URL.Value()
	if url == "" {
		return nil, nil
	}
	cal, err := app.Calendar(cfg)
	if err != nil {
		return nil, err
	}
	local, err := limiter.New(limiter.Options{Tiers: app.LimiterTiers(cfg), Calendar: cal})
	if err != nil {
		return nil, err
	}
	// An import is not the request path: give Redis time to answer.
	r, err := limiter.NewRedis(local, limiter.RedisOptions{URL: url, Timeout: max(cfg.Redis.Timeout.D(), 2*time.Second)})
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if err := r.Ping(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return r, nil
}

// printImportSummary writes a line per step and the conflicts.
func printImportSummary(w io.Writer, r cluster.ImportReport) {
	if r.DryRun {
		fmt.Fprintln(w, "summary (dry run: nothing was written):")
	} else {
		fmt.Fprintln(w, "summary:")
	}
	var conflicts []string
	for _, s := range r.Steps {
		line := fmt.Sprintf("  %-8s imported %d, skipped %d, conflicts %d", s.Step, s.Imported, s.Skipped, len(s.Conflicts))
		if s.Replaced > 0 {
			line += fmt.Sprintf(", replaced %d", s.Replaced)
		}
		if s.EventsImported+s.EventsSkipped > 0 {
			what := "audit events"
			if s.Step == "alerts" {
				what = "history transitions"
			}
			line += fmt.Sprintf("; %s imported %d, skipped %d", what, s.EventsImported, s.EventsSkipped)
		}
		fmt.Fprintln(w, line)
		for _, n := range s.Notes {
			fmt.Fprintf(w, "           %s\n", n)
		}
		for _, id := range s.Conflicts {
			conflicts = append(conflicts, s.Step+" "+id)
		}
	}
	if len(conflicts) > 0 {
		fmt.Fprintln(w, "conflicts (in the cluster with another record; left as they are):")
		for _, c := range conflicts {
			fmt.Fprintln(w, "  "+c)
		}
	}
}
