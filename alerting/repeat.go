package alerting

import (
	"context"
	"sync"
	"time"
)

// RepeatStage gives one receiver its own repeat interval. The evaluator
// re-announces a firing alert at the shortest interval of all receivers;
// this stage passes such a repeat on only when Interval has passed since
// it last passed that alert. Everything else goes through: an alert the
// receiver has not been told about, one whose severity rose since, and
// every resolve (after which the alert is forgotten).
//
// Time is the alert's LastNotifiedAt, the moment the evaluator announced
// it, so the stage needs no clock. Memory is one entry per alert told and
// not yet resolved; entries older than a week are dropped. Exec is safe for
// concurrent use, though a Dispatcher calls it from one goroutine.
type RepeatStage struct {
	interval time.Duration

	mu   sync.Mutex
	told map[string]toldAlert // alert ID ->
}

type toldAlert struct {
	at       time.Time
	severity Severity
}

// forgetTold bounds the memory of alerts whose resolve never came through
// this stage (resolved by hand, or filtered before it).
const forgetTold = 7 * 24 * time.Hour

// NewRepeatStage returns a stage that repeats a firing alert at most every
// interval; a negative interval, never.
func NewRepeatStage(interval time.Duration) *RepeatStage {
	return &RepeatStage{interval: interval, told: make(map[string]toldAlert)}
}

// Exec filters repeats that come too soon.
func (s *RepeatStage) Exec(_ context.Context, alerts ...Alert) ([]Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alert, 0, len(alerts))
	var latest time.Time
	for _, a := range alerts {
		if a.LastNotifiedAt.After(latest) {
			latest = a.LastNotifiedAt
		}
		if !a.Firing() {
			delete(s.told, a.ID)
			out = append(out, a)
			continue
		}
		prev, ok := s.told[a.ID]
		if ok && a.Severity.Rank() <= prev.severity.Rank() && (s.interval < 0 || a.LastNotifiedAt.Sub(prev.at) < s.interval) {
			continue
		}
		s.told[a.ID] = toldAlert{at: a.LastNotifiedAt, severity: a.Severity}
		out = append(out, a)
	}
	for id, t := range s.told {
		if latest.Sub(t.at) > forgetTold {
			delete(s.told, id)
		}
	}
	return out, nil
}
