package alerting

import (
	"context"
	"slices"
	"time"
)

// StateStore is where an Evaluator keeps its alerts, the highest alert
// sequence number it handed out, and the history of every transition.
// Two implement it: NewStoreState, the data file (the default), and
// package cluster's AlertStore, PostgreSQL shared by the instances of a
// cluster.
//
// A store that is not Shared belongs to one evaluator, which keeps the
// open alerts in memory and writes each change through. A Shared store is
// changed by several evaluators (one evaluating, any acknowledging or
// resolving), so the evaluator treats its memory as a cache: every pass,
// acknowledgement and resolve reads the alerts inside the Update that
// writes them back.
type StateStore interface {
	// Shared reports whether other evaluators change the same alerts.
	Shared() bool
	// View runs fn with a consistent view of the alerts.
	View(ctx context.Context, fn func(StateReader) error) error
	// Update runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise; fn's own errors are returned as they are. A
	// Shared store holds one lock for the whole Update that every Update
	// on the store takes, from any process, so what fn reads stays true
	// until it commits. Errors of the store itself wrap ErrUnavailable
	// when it could not be reached.
	Update(ctx context.Context, fn func(StateWriter) error) error
}

// StateReader reads alerts inside View or Update.
type StateReader interface {
	// Load returns the open alerts, the alerts resolved at or after
	// resolvedSince (for cool-downs), and the highest alert sequence
	// number handed out.
	Load(resolvedSince time.Time) (Snapshot, error)
	// Get returns one alert, or an error wrapping ErrNotFound.
	Get(id string) (Alert, error)
	// List returns the alerts that match q, in no particular order; it
	// applies q.Limit only when it also sorts newest first.
	List(q Query) ([]Alert, error)
	// History returns the transitions of alert a, oldest first.
	History(a *Alert) ([]Transition, error)
}

// StateWriter reads and writes alerts inside Update.
type StateWriter interface {
	StateReader
	// Save writes alerts, deletes the alerts with the ids given, appends
	// transitions, and keeps the store's sequence at or above c.Seq, so no
	// alert id is ever handed out twice.
	Save(c Changes) error
	// Cleanup removes resolved alerts resolved before cutoff and history
	// entries older than it, and returns how many records it removed.
	Cleanup(cutoff time.Time) (int, error)
}

// Snapshot is the alert state a store holds.
type Snapshot struct {
	Open     []Alert // pending, firing and recovering alerts
	Resolved []Alert // resolved alerts, as far back as asked
	Seq      uint64  // the highest alert sequence number handed out
}

// Changes is what one step of the evaluator writes.
type Changes struct {
	Put         []Alert
	Deleted     []string // ids of pending alerts that went back to inactive
	Transitions []Transition
	Seq         uint64 // the highest alert sequence number handed out
}

func (c *Changes) empty() bool {
	return len(c.Put) == 0 && len(c.Deleted) == 0 && len(c.Transitions) == 0
}

// Leadership says whether this evaluator is the one of its cluster that
// evaluates. Leading must be cheap and safe for concurrent use; package
// cluster's leader election implements it.
type Leadership interface {
	Leading() bool
}

// Query selects alerts for List. Empty fields select everything.
type Query struct {
	States      []State
	Severities  []Severity
	Types       []RuleType
	Rule        string
	SubjectKind SubjectKind
	Subject     string // the subject value, e.g. a key id
	// Acknowledged, when set, keeps only alerts that are (or are not)
	// acknowledged.
	Acknowledged *bool
	// Limit caps the answer; 0 means no cap.
	Limit int
}

// Match reports whether a is one of the alerts q selects.
func (q *Query) Match(a *Alert) bool {
	switch {
	case len(q.States) > 0 && !slices.Contains(q.States, a.State),
		len(q.Severities) > 0 && !slices.Contains(q.Severities, a.Severity),
		len(q.Types) > 0 && !slices.Contains(q.Types, a.Type),
		q.Rule != "" && q.Rule != a.Rule,
		q.SubjectKind != "" && q.SubjectKind != a.Subject.Kind,
		q.Subject != "" && q.Subject != a.Subject.Value,
		q.Acknowledged != nil && *q.Acknowledged != a.Acknowledged():
		return false
	}
	return true
}
