package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/metrics"
)

var (
	_ alerting.TrafficSource = (*Realtime)(nil)
	_ alerting.HistorySource = (*Service)(nil)
)

// Window returns the traffic of every subject of kind in
// [now-window, now], in whole seconds: for SubjectGlobal one Aggregate
// (exact to the second, the second in progress included), for routes, keys and
// owners one per subject with traffic, from the 10-second slots that
// overlap the window (so up to 10 s more). It satisfies
// alerting.TrafficSource; the slice is new on every call. It returns
// ErrWindowTooLong for a window longer than the ring's span, and an
// error for a window ≤ 0 or an unknown kind.
func (rt *Realtime) Window(kind alerting.SubjectKind, window time.Duration, now time.Time) ([]alerting.Aggregate, error) {
	switch {
	case window <= 0:
		return nil, fmt.Errorf("analytics: window must be > 0, got %s", window)
	case window > time.Duration(rt.span)*time.Second:
		return nil, fmt.Errorf("%w: %s asked, %s kept", ErrWindowTooLong, window, time.Duration(rt.span)*time.Second)
	}
	// Whole seconds: the one holding now-window to the one holding now.
	first, last := now.Add(-window).Unix(), now.Unix()
	switch kind {
	case alerting.SubjectGlobal:
		var sum metrics.Cell
		rt.sumSeconds(&sum, first, last)
		if sum.Count == 0 {
			return nil, nil
		}
		return []alerting.Aggregate{{Subject: alerting.Subject{Kind: kind}, Requests: int64(sum.Count),
			Errors5xx: int64(sum.Status5xx), RateLimited: int64(sum.RateLimited), P95: sum.LatencyQuantile(0.95)}}, nil
	case alerting.SubjectRoute:
		routes := newRouteSums()
		rt.eachSlot(first, last, routes.add)
		out := make([]alerting.Aggregate, 0, len(routes.order))
		for _, name := range routes.order {
			c := new(metrics.Cell)
			routes.byName[name].addTo(c)
			out = append(out, alerting.Aggregate{Subject: alerting.Subject{Kind: kind, Value: name}, Requests: int64(c.Count),
				Errors5xx: int64(c.Status5xx), RateLimited: int64(c.RateLimited), P95: c.LatencyQuantile(0.95)})
		}
		return out, nil
	case alerting.SubjectKey:
		return subjectAggregates(kind, rt.keySums(first, last)), nil
	case alerting.SubjectOwner:
		return subjectAggregates(kind, rt.keySums(first, last).byOwner()), nil
	}
	return nil, fmt.Errorf("analytics: unknown subject kind %q", kind)
}

// subjectSum is one key's or owner's traffic summed over a window's
// slots.
type subjectSum struct {
	entry  subjectEntry
	maxLat time.Duration
}

// add merges e's counts and latencies into s.
func (s *subjectSum) add(e *subjectEntry, maxLat time.Duration) {
	s.entry.requests += e.requests
	s.entry.errors5xx += e.errors5xx
	s.entry.rateLimited += e.rateLimited
	s.entry.latency.merge(&e.latency)
	s.maxLat = max(s.maxLat, maxLat)
}

// subjectSums are the sums of a window's subjects in the order first
// seen.
type subjectSums struct {
	byName map[string]*subjectSum
	order  []string
}

// sum returns name's sum, new (with owner) if name was not seen yet.
func (ss *subjectSums) sum(name, owner string) *subjectSum {
	a := ss.byName[name]
	if a == nil {
		a = &subjectSum{entry: subjectEntry{name: name, owner: owner}}
		ss.byName[name] = a
		ss.order = append(ss.order, name)
	}
	return a
}

// keySums sums every key's traffic in the slots of the seconds first to
// last, oldest slot first, so each key keeps its newest owner and tier.
func (rt *Realtime) keySums(first, last int64) *subjectSums {
	keys := &subjectSums{byName: make(map[string]*subjectSum)}
	rt.eachSlot(first, last, func(s *slot) {
		for i := range s.keys.entries {
			e := &s.keys.entries[i]
			a := keys.sum(e.name, "")
			a.add(e, time.Duration(e.maxLatencyUS)*time.Microsecond)
			a.entry.owner, a.entry.tier = e.owner, e.tier
		}
	})
	return keys
}

// byOwner returns the sums of the owners of keys, each its keys' sum;
// keys without an owner are left out.
func (keys *subjectSums) byOwner() *subjectSums {
	owners := &subjectSums{byName: make(map[string]*subjectSum)}
	for _, name := range keys.order {
		k := keys.byName[name]
		if k.entry.owner != "" {
			owners.sum(k.entry.owner, k.entry.owner).add(&k.entry, k.maxLat)
		}
	}
	return owners
}

// subjectAggregates returns sums as kind's aggregates, in sums' order;
// only keys carry a tier.
func subjectAggregates(kind alerting.SubjectKind, sums *subjectSums) []alerting.Aggregate {
	out := make([]alerting.Aggregate, 0, len(sums.order))
	for _, name := range sums.order {
		a := sums.byName[name]
		ag := alerting.Aggregate{Subject: alerting.Subject{Kind: kind, Value: name}, Owner: a.entry.owner,
			Requests: int64(a.entry.requests), Errors5xx: int64(a.entry.errors5xx), RateLimited: int64(a.entry.rateLimited),
			P95: a.entry.latency.quantile(0.95, a.maxLat)}
		if kind == alerting.SubjectKey {
			ag.Tier = a.entry.tier
		}
		out = append(out, ag)
	}
	return out
}

// Hours calls fn with the hourly rollup of every subject of kind in each
// of hours (UTC hour starts, ascending) that has one, subject by subject
// (as the rollups are stored: a subject's hours one after another) and ""
// for SubjectGlobal; it satisfies alerting.HistorySource. All hours are
// read in one transaction and one walk over the subjects, a cursor seek
// per subject and wanted hour (metrics.Reader.ScanCellsAt). Safe for
// concurrent use; fn runs on the caller's goroutine.
func (s *Service) Hours(kind alerting.SubjectKind, hours []time.Time, fn func(subject string, hour time.Time, st alerting.HourStat)) error {
	var dim metrics.Dimension
	switch kind {
	case alerting.SubjectGlobal:
		dim = metrics.DimTotal
	case alerting.SubjectRoute:
		dim = metrics.DimRoute
	case alerting.SubjectKey:
		dim = metrics.DimKey
	case alerting.SubjectOwner:
		dim = metrics.DimOwner
	default:
		return fmt.Errorf("analytics: unknown subject kind %q", kind)
	}
	return s.src.ScanCellsAt(context.Background(), metrics.Hourly, dim, hours, func(v string, start time.Time, c *metrics.Cell) error {
		fn(v, start, alerting.HourStat{Requests: int64(c.Count), P95: c.LatencyQuantile(0.95)})
		return nil
	})
}
