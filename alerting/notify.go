package alerting

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Stage is one step of the notification pipeline, after Alertmanager's
// notify.Stage. Exec receives a batch of alerts and returns the alerts
// the next stage should see: a filter returns fewer, most stages return
// their input. Stages must not modify the alerts they are given (the same
// batch goes to every receiver); they make new slices instead.
type Stage interface {
	Exec(ctx context.Context, alerts ...Alert) ([]Alert, error)
}

// StageFunc turns a function into a Stage.
type StageFunc func(ctx context.Context, alerts ...Alert) ([]Alert, error)

// Exec calls f.
func (f StageFunc) Exec(ctx context.Context, alerts ...Alert) ([]Alert, error) {
	return f(ctx, alerts...)
}

// Notifier delivers one group of alerts somewhere. It reports whether a
// failure is worth retrying: network errors, timeouts, HTTP 429 and 5xx,
// SMTP 4yz replies are; HTTP 4xx and SMTP 5yz replies are not, since the
// same request would fail the same way.
type Notifier interface {
	Notify(ctx context.Context, alerts ...Alert) (retryable bool, err error)
}

// NotifyError is a failed delivery, as returned by SendStage.
type NotifyError struct {
	Retryable bool
	Err       error
}

func (e *NotifyError) Error() string { return e.Err.Error() }
func (e *NotifyError) Unwrap() error { return e.Err }

// Retryable reports whether err is a delivery failure worth retrying.
func Retryable(err error) bool {
	var ne *NotifyError
	return errors.As(err, &ne) && ne.Retryable
}

// MultiStage runs stages one after the other, each on the output of the
// previous. It stops at the first error, and early when no alert is left.
type MultiStage []Stage

// Exec runs the stages in order.
func (ms MultiStage) Exec(ctx context.Context, alerts ...Alert) ([]Alert, error) {
	var err error
	for _, s := range ms {
		if len(alerts) == 0 {
			return nil, nil
		}
		if alerts, err = s.Exec(ctx, alerts...); err != nil {
			return nil, err
		}
	}
	return alerts, nil
}

// FanoutStage runs stages concurrently on the same alerts and waits for
// all of them. It returns its input and every error, joined.
type FanoutStage []Stage

// Exec runs the stages in parallel.
func (fs FanoutStage) Exec(ctx context.Context, alerts ...Alert) ([]Alert, error) {
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, s := range fs {
		wg.Go(func() { _, errs[i] = s.Exec(ctx, alerts...) })
	}
	wg.Wait()
	return alerts, errors.Join(errs...)
}

// MinSeverityStage passes on only alerts of at least Min severity.
type MinSeverityStage struct {
	Min Severity
}

// Exec filters.
func (s MinSeverityStage) Exec(_ context.Context, alerts ...Alert) ([]Alert, error) {
	if s.Min == "" || s.Min == SeverityLow {
		return alerts, nil
	}
	var out []Alert
	for _, a := range alerts {
		if a.Severity.AtLeast(s.Min) {
			out = append(out, a)
		}
	}
	return out, nil
}

// firingOnlyStage drops resolved alerts, for receivers that do not want
// to hear about resolutions.
type firingOnlyStage struct{}

func (firingOnlyStage) Exec(_ context.Context, alerts ...Alert) ([]Alert, error) {
	var out []Alert
	for _, a := range alerts {
		if a.Firing() {
			out = append(out, a)
		}
	}
	return out, nil
}

// Group is what the pipeline knows about the notification being built:
// the receiver's name, the group key (stable for the same group labels) and
// the labels the group was formed by. Notifiers read it with GroupFrom.
type Group struct {
	Receiver string
	Key      string
	Labels   map[string]string
}

type groupKey struct{}

// WithGroup returns a context that carries g.
func WithGroup(ctx context.Context, g Group) context.Context {
	return context.WithValue(ctx, groupKey{}, g)
}

// GroupFrom returns the Group carried by ctx.
func GroupFrom(ctx context.Context) (Group, bool) {
	g, ok := ctx.Value(groupKey{}).(Group)
	return g, ok
}

// defaultGroupBy groups alerts by rule.
var defaultGroupBy = []string{"alertname"}

// GroupStage splits alerts into groups that share the values of the By
// labels (default: alertname) and runs Next once per group, in the order
// of the group keys, with the group in the context. It returns its input
// and the errors of all groups, joined.
type GroupStage struct {
	By   []string
	Next Stage
}

// Exec groups.
func (s GroupStage) Exec(ctx context.Context, alerts ...Alert) ([]Alert, error) {
	by := s.By
	if len(by) == 0 {
		by = defaultGroupBy
	}
	parent, _ := GroupFrom(ctx)
	groups := make(map[string][]Alert)
	labels := make(map[string]map[string]string)
	for _, a := range alerts {
		gl := make(map[string]string, len(by))
		for _, name := range by {
			if v, ok := a.Labels[name]; ok {
				gl[name] = v
			}
		}
		key := formatGroupKey(gl)
		groups[key] = append(groups[key], a)
		labels[key] = gl
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		gctx := WithGroup(ctx, Group{Receiver: parent.Receiver, Key: k, Labels: labels[k]})
		if _, err := s.Next.Exec(gctx, groups[k]...); err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", k, err))
		}
	}
	return alerts, errors.Join(errs...)
}

// formatGroupKey writes labels the way Alertmanager writes group keys:
// {}:{a="1", b="2"}, sorted by name.
func formatGroupKey(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("{}:{")
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", n, labels[n])
	}
	b.WriteString("}")
	return b.String()
}

// SendStage hands the alerts to a Notifier. A failure comes back as a
// *NotifyError that says whether it may be retried.
type SendStage struct {
	Notifier Notifier
}

// Exec sends.
func (s SendStage) Exec(ctx context.Context, alerts ...Alert) ([]Alert, error) {
	if retryable, err := s.Notifier.Notify(ctx, alerts...); err != nil {
		return nil, &NotifyError{Retryable: retryable, Err: err}
	}
	return alerts, nil
}

// RetryPolicy bounds retries. The zero value means the defaults: five
// attempts, backoff from 1s doubling to at most 1m, and no attempt started
// after 5m.
type RetryPolicy struct {
	MaxAttempts    int           // including the first; default 5
	InitialBackoff time.Duration // default 1s
	MaxBackoff     time.Duration // default 1m
	MaxElapsed     time.Duration // default 5m
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = time.Minute
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = 5 * time.Minute
	}
	return p
}

// backoff is the wait before attempt n+1 (n ≥ 1): InitialBackoff·2ⁿ⁻¹
// capped at MaxBackoff, with "equal jitter" (half fixed, half random), so
// receivers that failed together do not retry in lockstep.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// RetryStage runs Next again while it fails with a retryable error, with
// exponential backoff and jitter, within the Policy's bounds. OnRetry, if
// set, is called before each wait with the attempt that failed.
type RetryStage struct {
	Next    Stage
	Policy  RetryPolicy
	OnRetry func(attempt int, err error)
}

// Exec tries, and tries again.
func (s RetryStage) Exec(ctx context.Context, alerts ...Alert) ([]Alert, error) {
	p := s.Policy.withDefaults()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		out, err := s.Next.Exec(ctx, alerts...)
		if err == nil {
			return out, nil
		}
		if !Retryable(err) {
			return nil, err
		}
		wait := p.backoff(attempt)
		if attempt >= p.MaxAttempts || time.Since(start)+wait > p.MaxElapsed {
			return nil, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		if s.OnRetry != nil {
			s.OnRetry(attempt, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("gave up after %d attempts (%v): %w", attempt, ctx.Err(), err)
		case <-timer.C:
		}
	}
}
