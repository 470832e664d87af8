package config

import (
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Cluster joins several instances through PostgreSQL (README.md,
// "Cluster mode"). With PostgresURL empty the instance runs alone, as it always has, and
// nothing else here is read.
type Cluster struct {
	// PostgresURL is the cluster's system of record, a secret like the
	// others ("env:NAME", "file:PATH" or the URL itself). Empty: single
	// instance.
	PostgresURL Secret `toml:"postgres_url"`
	// InstanceID names this instance in the cluster; unique per instance.
	// Empty: the host name. "env:NAME" reads it from the environment
	// (a pod's name through the downward API); Load resolves it.
	InstanceID string `toml:"instance_id"`
	// SpoolMaxRecords bounds the request records waiting in the data file
	// to be shipped to PostgreSQL; beyond it the oldest are dropped,
	// counted and logged (rollups never are).
	SpoolMaxRecords int `toml:"spool_max_records"`
}

// DefaultSpoolMaxRecords is [cluster] spool_max_records' default: about
// 420 MB of raw blocks at 42 bytes a record (docs/BENCHMARKS.md), a day
// and more of outage at 100 requests a second.
const DefaultSpoolMaxRecords = 10_000_000

// instanceIDPattern keeps instance ids printable and short enough for
// logs, PostgreSQL's application_name and a dashboard panel.
var instanceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._\-]{0,62}$`)

// validateCluster checks what can be checked before secrets are resolved:
// a literal URL and the instance id.
func (c *Config) validateCluster(pl *problemList) {
	if u := string(c.Cluster.PostgresURL); u != "" && !isReference(u) {
		checkPostgresURL(pl, u)
	}
	if id := c.Cluster.InstanceID; !strings.HasPrefix(id, "env:") {
		checkInstanceID(pl, id)
	}
	if n := c.Cluster.SpoolMaxRecords; n < 1 {
		pl.add("cluster.spool_max_records", "must be at least 1, got %d", n)
	}
}

func checkInstanceID(pl *problemList, id string) {
	if id != "" && !instanceIDPattern.MatchString(id) {
		pl.add("cluster.instance_id", "must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit, got %q", id)
	}
}

// resolveInstanceID replaces an env: reference with the variable's value.
// An unset variable is a problem, not the host name: whoever wrote the
// reference meant a name, and two pods falling back to one host name
// would share an identity.
func (c *Config) resolveInstanceID(pl *problemList, getenv func(string) string) {
	name, ok := strings.CutPrefix(c.Cluster.InstanceID, "env:")
	if !ok {
		return
	}
	id := getenv(name)
	if id == "" {
		pl.add("cluster.instance_id", "names env:%s, which is not set", name)
		return
	}
	c.Cluster.InstanceID = id
	checkInstanceID(pl, id)
}

// validateClusterResolved checks what needs resolved secrets: the URL an
// env:/file: reference points at, and that every instance of a cluster can
// share one key secret (a secret generated into each data directory would
// make every key fail on every other instance).
func (c *Config) validateClusterResolved(pl *problemList) {
	u := c.Cluster.PostgresURL.Value()
	if u == "" {
		return
	}
	checkPostgresURL(pl, u)
	if c.Security.KeySecret.Value() == "" {
		pl.add("security.key_secret", "must be set when cluster.postgres_url is: every instance hashes keys with it, so all need the same one (set APIWARDEN_KEY_SECRET)")
	}
}

// checkPostgresURL accepts what pgx accepts. The value is never repeated
// in the message: it may hold a password.
func checkPostgresURL(pl *problemList, u string) {
	if _, err := pgconn.ParseConfig(u); err != nil {
		pl.add("cluster.postgres_url", "must be a PostgreSQL URL such as postgres://apiwarden:PASSWORD@db.internal:5432/apiwarden?sslmode=verify-full (not shown here: it may hold a password)")
	}
}
