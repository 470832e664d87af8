package metrics

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// OverflowRoute is the route an ingested record is filed under once its
// own would pass RouteCap's limit. It cannot be a route pattern, which
// starts with "/".
const OverflowRoute = "(overflow)"

// DefaultMaxIngestedRoutes is the cap of [metrics] max_ingested_routes:
// far more route patterns than an API has, far fewer than the paths an
// app might report as routes by mistake.
const DefaultMaxIngestedRoutes = 1000

// RouteCap bounds the distinct routes of ingested records (POST
// /v1/events). Routes are interned in the string dictionary, which is
// never pruned (dict.go), so without a cap every new value a caller
// makes up, or every raw path an app reports as its route by mistake,
// grows the data file for good. Once the cap's routes are known, a record
// with yet another route is filed under OverflowRoute, and counted.
//
// The routes it knows are those NewRouteCap was given (the configured
// patterns and those already stored) and those Admit let in since.
// Records the proxy and forward auth write are not capped: their routes
// are the configured patterns. A RouteCap is safe for concurrent use.
type RouteCap struct {
	max        int
	mu         sync.RWMutex
	known      map[string]struct{}
	overflowed atomic.Uint64
}

// NewRouteCap returns a cap of max distinct routes (DefaultMaxIngestedRoutes
// when max < 1) that knows the given routes already, even beyond max.
func NewRouteCap(max int, known ...string) *RouteCap {
	if max < 1 {
		max = DefaultMaxIngestedRoutes
	}
	c := &RouteCap{max: max, known: make(map[string]struct{}, len(known))}
	for _, r := range known {
		if r != "" {
			c.known[r] = struct{}{}
		}
	}
	return c
}

// Admit returns route when the cap knows it or has room for it (and from
// then on knows it), and OverflowRoute otherwise. The empty route (none)
// is always admitted.
func (c *RouteCap) Admit(route string) string {
	if route == "" || route == OverflowRoute {
		return route
	}
	c.mu.RLock()
	_, ok := c.known[route]
	c.mu.RUnlock()
	if ok {
		return route
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.known[route]; ok {
		return route
	}
	if len(c.known) >= c.max {
		c.overflowed.Add(1)
		return OverflowRoute
	}
	c.known[route] = struct{}{}
	return route
}

// Reconfigure applies a reloaded configuration: max becomes the cap
// (DefaultMaxIngestedRoutes when max < 1) and the given routes, the
// configured patterns, are known from now on, even beyond it. A higher
// cap makes room at once; a lower one forgets no known route, it only
// admits no new one until fewer are known. Safe to call while Admit runs.
func (c *RouteCap) Reconfigure(max int, known ...string) {
	if max < 1 {
		max = DefaultMaxIngestedRoutes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max = max
	for _, r := range known {
		if r != "" {
			c.known[r] = struct{}{}
		}
	}
}

// RouteCapStats are a RouteCap's counters for /metrics.
type RouteCapStats struct {
	Known      int    // distinct routes admitted, given ones included
	Max        int    // the cap
	Overflowed uint64 // records filed under OverflowRoute
}

// Stats returns the cap's counters.
func (c *RouteCap) Stats() RouteCapStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return RouteCapStats{Known: len(c.known), Max: c.max, Overflowed: c.overflowed.Load()}
}

// errEnoughValues stops a scan that has found what it was asked for.
var errEnoughValues = errors.New("metrics: enough values")

// Values returns up to limit distinct values of dim, other than the empty
// one, that the daily rollups hold, of any day, in storage order: for example the routes
// already stored, to start a RouteCap with. Errors as ScanCells.
func (r *Reader) Values(ctx context.Context, dim Dimension, limit int) ([]string, error) {
	var values []string
	q := CellQuery{Interval: Daily, Dimension: dim, AllValues: true, From: time.Unix(0, 0)}
	err := r.ScanCells(ctx, q, func(value string, _ time.Time, _ *Cell) error {
		if value == "" || len(values) > 0 && values[len(values)-1] == value {
			return nil
		}
		if len(values) == limit {
			return errEnoughValues
		}
		values = append(values, value)
		return nil
	})
	if err != nil && !errors.Is(err, errEnoughValues) {
		return nil, err
	}
	return values, nil
}
