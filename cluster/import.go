package cluster

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/store"
)

// ImportOptions configure Cluster.Import.
type ImportOptions struct {
	// DryRun compares the data file with the cluster and reports what an
	// import would do, writing nothing anywhere.
	DryRun bool
	// Force replaces a key the cluster holds with another record by the
	// data file's (an "updated" audit event says so), and likewise an
	// alert the cluster holds with other contents; an open alert whose
	// rule and subject the cluster has open as another alert replaces
	// that one, which the import resolves. Without it each is a
	// conflict: reported and left as the cluster has it.
	Force bool
	// Redis, when set, receives the data file's bucket states (the
	// cluster's shared buckets); nil leaves them out, since each instance
	// then keeps its own.
	Redis *limiter.Redis
	// Progress receives a line per step and one every ProgressEvery items
	// of a large step; nil discards them.
	Progress      io.Writer
	ProgressEvery int // default 1000
	// Now is the clock bucket states are judged by; nil means time.Now.
	Now func() time.Time
	// InstanceID is the identity the data file's request records and
	// rollup cells are imported under: the instance id an instance on
	// this data file ships as (cluster.instance_id, else the host name),
	// so that instance's shipper later finds its blocks shipped and
	// replaces its cells' rows rather than adding to them. Never give it
	// to an instance on another data file. Empty leaves records and
	// rollups out.
	InstanceID string
}

// StepResult is what one step of an import did (or, in a dry run, would
// do) with the items of its kind.
type StepResult struct {
	Step      string
	Imported  int      // written into the cluster
	Skipped   int      // already there, the same
	Conflicts []string // there with other contents, left as they are (ids)
	Replaced  int      // there with other contents, replaced (Force)
	// Events counts the audit events (keys step) or the history
	// transitions (alerts step) imported and skipped.
	EventsImported, EventsSkipped int
	// Notes say what the step left out, and why.
	Notes []string
}

// ImportReport is the outcome of Import, a StepResult per step in order.
type ImportReport struct {
	DryRun bool
	Steps  []StepResult
}

// Conflicts counts the conflicts of every step.
func (r ImportReport) Conflicts() int {
	n := 0
	for _, s := range r.Steps {
		n += len(s.Conflicts)
	}
	return n
}

// importStep is one named part of an import. Steps run in order; each is
// idempotent, so an import that failed half-way is finished by running
// it again.
type importStep struct {
	name string
	run  func(im *importer, ctx context.Context) (StepResult, error)
}

// importSteps is the order of an import: keys first, since everything
// else refers to them.
var importSteps = []importStep{
	{name: "keys", run: (*importer).keys},
	{name: "alerts", run: (*importer).alerts},
	{name: "buckets", run: (*importer).buckets},
	{name: "records", run: (*importer).records},
	{name: "rollups", run: (*importer).rollups},
}

// importer is the state of one Import call.
type importer struct {
	c    *Cluster
	src  *store.Store
	opts ImportOptions
}

// progress writes one progress line.
func (im *importer) progress(format string, args ...any) {
	if im.opts.Progress == nil {
		return
	}
	if im.opts.DryRun {
		format = "dry run: " + format
	}
	fmt.Fprintf(im.opts.Progress, format+"\n", args...)
}

// Import copies a single instance's state from its data file src (opened
// read-only, never written) into the cluster: its keys with their hashes
// and audit events, through the same change log and NOTIFY as admin
// writes, so running instances' mirrors pick them up; its alerts with
// their history, under the lock the cluster's evaluators take, and the
// alert id sequence raised above every imported id; its bucket states
// into opts.Redis; and its raw request records and rollup cells as
// shipped batches and cell rows of opts.InstanceID. Running it again
// changes nothing: what the
// cluster has already is skipped (see ImportOptions.Force for what
// differs).
//
// The cluster must be reachable, and the key secret must be the one the
// file's keys were hashed with (ErrImportSecret) and the cluster's (Open
// checks that: ErrKeySecretMismatch); Options.KeySecretCheck must be set.
// A step that fails stops the import; what earlier steps wrote stays,
// which a rerun completes. Import is not meant to run concurrently with
// itself on one cluster, but is safe with admin writes on running
// instances: each key is copied in its own transaction under the row
// locks admin writes take.
func (c *Cluster) Import(ctx context.Context, src *store.Store, opts ImportOptions) (ImportReport, error) {
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	report := ImportReport{DryRun: opts.DryRun}
	if c.opts.KeySecretCheck == "" {
		return report, fmt.Errorf("%w: the cluster was opened without a key secret check", ErrImportSecret)
	}
	readyCtx, cancel := c.deadline(ctx)
	err := c.ensureReady(readyCtx)
	cancel()
	if err != nil {
		return report, fmt.Errorf("cluster: import: PostgreSQL: %w", err)
	}
	fileCheck, err := keys.StoredSecretCheck(src)
	if err != nil {
		return report, fmt.Errorf("cluster: import: %w", err)
	}
	if fileCheck != "" && fileCheck != c.opts.KeySecretCheck {
		return report, fmt.Errorf("%w: set APIWARDEN_KEY_SECRET to the secret the single instance used (its <data_dir>/%s when it generated one), on every instance too",
			ErrImportSecret, keys.SecretFileName)
	}
	im := &importer{c: c, src: src, opts: opts}
	for _, step := range importSteps {
		res, err := step.run(im, ctx)
		res.Step = step.name
		report.Steps = append(report.Steps, res)
		if err != nil {
			return report, fmt.Errorf("cluster: import: %s: %w", step.name, err)
		}
	}
	return report, nil
}
