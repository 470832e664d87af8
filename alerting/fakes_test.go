package alerting_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// In-memory implementations of the source interfaces. The real adapters
// over metrics and limiter are integrated elsewhere.

// t0 is a Friday; t0 + 24h is the Saturday of the calendar tests.
var t0 = time.Date(2026, 6, 5, 12, 0, 0, 0, time.UTC)

type fakeTraffic struct {
	mu   sync.Mutex
	data map[alerting.SubjectKind][]alerting.Aggregate
	err  error
}

func newFakeTraffic() *fakeTraffic {
	return &fakeTraffic{data: map[alerting.SubjectKind][]alerting.Aggregate{}}
}

func (f *fakeTraffic) set(kind alerting.SubjectKind, aggs ...alerting.Aggregate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[kind] = aggs
}

func (f *fakeTraffic) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeTraffic) Window(kind alerting.SubjectKind, _ time.Duration, _ time.Time) ([]alerting.Aggregate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.data[kind], f.err
}

// fakeHistory answers every hour with the function's result.
type fakeHistory func(kind alerting.SubjectKind, hour time.Time) map[string]alerting.HourStat

func (f fakeHistory) Hours(kind alerting.SubjectKind, hours []time.Time, fn func(string, time.Time, alerting.HourStat)) error {
	for _, at := range hours {
		for subject, st := range f(kind, at) {
			fn(subject, at, st)
		}
	}
	return nil
}

type fakeQuotas struct {
	mu    sync.Mutex
	usage []alerting.QuotaUsage
}

func (f *fakeQuotas) set(u ...alerting.QuotaUsage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usage = u
}

func (f *fakeQuotas) Quotas(time.Time) ([]alerting.QuotaUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usage, nil
}

// saturdayBoost is the wedding-day calendar rule: +1 on Saturdays.
type saturdayBoost struct{}

func (saturdayBoost) SeverityBoost(now time.Time) int {
	if now.Weekday() == time.Saturday {
		return 1
	}
	return 0
}

// recorder is a Stage that remembers what it was given.
type recorder struct {
	mu      sync.Mutex
	batches [][]alerting.Alert
}

func (r *recorder) Exec(_ context.Context, alerts ...alerting.Alert) ([]alerting.Alert, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, alerts)
	return alerts, nil
}

// all returns every alert received, in order.
func (r *recorder) all() []alerting.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []alerting.Alert
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

// statuses is "firing" or "resolved" per alert received.
func (r *recorder) statuses() []string {
	var out []string
	for _, a := range r.all() {
		if a.Firing() {
			out = append(out, "firing")
		} else {
			out = append(out, "resolved")
		}
	}
	return out
}

// harness drives an evaluator with a stepping clock.
type harness struct {
	t        *testing.T
	store    *store.Store
	traffic  *fakeTraffic
	quotas   *fakeQuotas
	notified *recorder
	ev       *alerting.Evaluator
	now      time.Time
	opts     alerting.Options
}

func newHarness(t *testing.T, rules []alerting.Rule, tweak ...func(*alerting.Options)) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		store:    storetest.MustOpen(t),
		traffic:  newFakeTraffic(),
		quotas:   &fakeQuotas{},
		notified: &recorder{},
		now:      t0,
	}
	h.opts = alerting.Options{
		Store:   h.store,
		Rules:   rules,
		Traffic: h.traffic,
		History: fakeHistory(func(alerting.SubjectKind, time.Time) map[string]alerting.HourStat { return nil }),
		Quotas:  h.quotas,
		Notify:  h.notified,
		Now:     func() time.Time { return h.now },
	}
	for _, f := range tweak {
		f(&h.opts)
	}
	h.restart()
	return h
}

// restart builds a new evaluator on the same store, as after a process
// restart.
func (h *harness) restart() {
	h.t.Helper()
	ev, err := alerting.New(h.opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.ev = ev
}

// step advances the clock by d and runs one pass.
func (h *harness) step(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	if err := h.ev.EvalAt(context.Background(), h.now); err != nil {
		h.t.Fatalf("eval at %s: %v", h.now, err)
	}
}

// steps runs n passes, d apart.
func (h *harness) steps(n int, d time.Duration) {
	h.t.Helper()
	for range n {
		h.step(d)
	}
}

// open returns the alerts that are not resolved.
func (h *harness) open() []alerting.Alert {
	h.t.Helper()
	list, err := h.ev.List(alerting.Query{States: []alerting.State{
		alerting.StatePending, alerting.StateFiring, alerting.StateRecovering}})
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

// only returns the one alert of the evaluator, failing otherwise.
func (h *harness) only() alerting.Alert {
	h.t.Helper()
	list, err := h.ev.List(alerting.Query{})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(list) != 1 {
		h.t.Fatalf("want exactly one alert, have %d: %+v", len(list), list)
	}
	return list[0]
}
