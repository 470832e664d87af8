package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// Receiver is one destination for notifications and how to reach it.
type Receiver struct {
	// Name identifies the receiver in stats, logs and payloads.
	Name     string
	Notifier Notifier
	// MinSeverity drops alerts below it; empty admits all.
	MinSeverity Severity
	// GroupBy are the label names a notification groups alerts by;
	// default alertname (one notification per rule and batch).
	GroupBy []string
	// SkipResolved stops notifications of resolved alerts.
	SkipResolved bool
	// RepeatInterval, when not 0, spaces this receiver's repeats of a
	// firing alert at least this far apart; negative drops them all (see
	// RepeatStage). Repeats come from the evaluator, so its RepeatInterval
	// must not be longer.
	RepeatInterval time.Duration
	Retry          RetryPolicy
	// QueueSize is the number of batches waiting for this receiver beyond
	// which new batches are dropped and counted; default 64.
	QueueSize int
}

// NotifierStats counts one receiver's notifications (one notification is
// one group of alerts delivered in one request).
type NotifierStats struct {
	Name    string `json:"name"`
	Sent    uint64 `json:"sent"`    // delivered
	Failed  uint64 `json:"failed"`  // given up on, after retries
	Retried uint64 `json:"retried"` // attempts that failed and were retried
	Dropped uint64 `json:"dropped"` // alerts dropped because the queue was full
	Queued  int    `json:"queued"`  // batches waiting now
}

// Dispatcher is the Stage the evaluator hands alerts to. Exec never
// blocks: it puts the batch on every receiver's bounded queue (or drops and
// counts it when the queue is full). Each receiver has a goroutine of its
// own that runs its pipeline
//
//	MinSeverity → (drop resolved) → (Repeat) → Group → Retry(Send)
//
// so a slow or failing receiver delays neither the evaluator nor the other
// receivers. Nothing is delivered until Run is called.
type Dispatcher struct {
	log       *slog.Logger
	receivers []*receiverQueue

	life lifecycle.State
}

type receiverQueue struct {
	name     string
	queue    chan []Alert
	pipeline Stage

	sent, failed, retried, dropped atomic.Uint64
}

var _ Stage = (*Dispatcher)(nil)

// NewDispatcher checks the receivers and builds their pipelines. It
// returns an error wrapping ErrInvalidReceiver for a receiver without a
// name or notifier, a duplicate name or an unknown MinSeverity. A nil
// logger discards.
func NewDispatcher(receivers []Receiver, logger *slog.Logger) (*Dispatcher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{log: logger}
	seen := map[string]bool{}
	for i, r := range receivers {
		switch {
		case r.Name == "":
			return nil, fmt.Errorf("%w: receiver #%d has no name", ErrInvalidReceiver, i+1)
		case seen[r.Name]:
			return nil, fmt.Errorf("%w: two receivers are named %q", ErrInvalidReceiver, r.Name)
		case r.Notifier == nil:
			return nil, fmt.Errorf("%w: receiver %q has no notifier", ErrInvalidReceiver, r.Name)
		case r.MinSeverity != "" && r.MinSeverity.Rank() == 0:
			return nil, fmt.Errorf("%w: receiver %q: min_severity must be low, medium, high or critical; got %q",
				ErrInvalidReceiver, r.Name, r.MinSeverity)
		}
		seen[r.Name] = true
		size := r.QueueSize
		if size <= 0 {
			size = 64
		}
		q := &receiverQueue{name: r.Name, queue: make(chan []Alert, size)}
		stages := MultiStage{MinSeverityStage{Min: r.MinSeverity}}
		if r.SkipResolved {
			stages = append(stages, firingOnlyStage{})
		}
		if r.RepeatInterval != 0 {
			stages = append(stages, NewRepeatStage(r.RepeatInterval))
		}
		retry := RetryStage{
			Next:   SendStage{Notifier: r.Notifier},
			Policy: r.Retry,
			OnRetry: func(attempt int, err error) {
				q.retried.Add(1)
				logger.Warn("notification failed, retrying", "receiver", r.Name, "attempt", attempt, "err", err)
			},
		}
		stages = append(stages, GroupStage{By: r.GroupBy, Next: countStage{q: q, log: logger, next: retry}})
		q.pipeline = stages
		d.receivers = append(d.receivers, q)
	}
	return d, nil
}

// countStage counts the outcome of each group's delivery.
type countStage struct {
	q    *receiverQueue
	log  *slog.Logger
	next Stage
}

func (s countStage) Exec(ctx context.Context, alerts ...Alert) ([]Alert, error) {
	out, err := s.next.Exec(ctx, alerts...)
	if err != nil {
		s.q.failed.Add(1)
		g, _ := GroupFrom(ctx)
		s.log.Error("notification failed", "receiver", s.q.name, "group", g.Key, "alerts", len(alerts), "err", err)
		return out, err
	}
	s.q.sent.Add(1)
	return out, nil
}

// Exec queues the alerts for every receiver without waiting. It returns
// its input and never an error: drops are counted, not reported.
func (d *Dispatcher) Exec(_ context.Context, alerts ...Alert) ([]Alert, error) {
	if len(alerts) == 0 {
		return alerts, nil
	}
	for _, q := range d.receivers {
		select {
		case q.queue <- alerts:
		default:
			q.dropped.Add(uint64(len(alerts)))
			d.log.Warn("notification queue full, alerts dropped", "receiver", q.name, "alerts", len(alerts))
		}
	}
	return alerts, nil
}

// Run delivers queued alerts until ctx ends or Stop is called; then it
// abandons deliveries in flight (a retry waiting for its backoff gives up)
// and returns nil. Batches still queued are left undelivered. A call while
// Run is active returns an error wrapping lifecycle.ErrAlreadyRunning; a
// call after Stop, or after Run has returned, returns nil at once.
func (d *Dispatcher) Run(ctx context.Context) error {
	return d.life.Run("alerting: dispatcher", func(stop <-chan struct{}) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var wg sync.WaitGroup
		for _, q := range d.receivers {
			wg.Go(func() { q.run(ctx) })
		}
		select {
		case <-ctx.Done():
		case <-stop:
		}
		cancel()
		wg.Wait()
		return nil
	})
}

func (q *receiverQueue) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-q.queue:
			rctx := WithGroup(ctx, Group{Receiver: q.name})
			_, _ = q.pipeline.Exec(rctx, batch...) // counted and logged by countStage
		}
	}
}

// Stop ends Run and waits for it. It is safe to call more than once and
// from several goroutines, and before Run (which then returns at once).
func (d *Dispatcher) Stop() { d.life.Stop(nil) }

// Done is closed once the dispatcher has stopped: when Run has returned,
// or when Stop was called before Run.
func (d *Dispatcher) Done() <-chan struct{} { return d.life.Stopped() }

// Stats returns the counters of every receiver, in configuration order.
func (d *Dispatcher) Stats() []NotifierStats {
	out := make([]NotifierStats, 0, len(d.receivers))
	for _, q := range d.receivers {
		out = append(out, NotifierStats{
			Name:    q.name,
			Sent:    q.sent.Load(),
			Failed:  q.failed.Load(),
			Retried: q.retried.Load(),
			Dropped: q.dropped.Load(),
			Queued:  len(q.queue),
		})
	}
	return out
}
