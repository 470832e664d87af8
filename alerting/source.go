package alerting

import "time"

// The evaluator reads its data through the interfaces below. They are
// declared here, at the consumer, and kept small so that adapters over the
// metrics rollups and the limiter are a few lines each. None of them is
// asked for raw request records.

// Aggregate is the traffic of one subject over a window.
type Aggregate struct {
	Subject Subject
	// Owner and Tier describe a key subject (and Owner an owner subject);
	// rule filters on owners and tiers read them. Empty when unknown.
	Owner string
	Tier  string

	Requests    int64         // all requests, 429s and 5xx included
	Errors5xx   int64         // answers with a 5xx status
	RateLimited int64         // answers with 429
	P95         time.Duration // 95th percentile latency; 0 when unknown
}

// TrafficSource reads realtime windowed aggregates.
type TrafficSource interface {
	// Window returns one Aggregate for every subject of kind with traffic in
	// [now-window, now]; subjects without traffic may be left out. For
	// SubjectGlobal it returns at most one Aggregate, with an empty value.
	// The evaluator reads the slice during the call's pass and keeps none
	// of it, so an implementation may reuse it on the next call.
	Window(kind SubjectKind, window time.Duration, now time.Time) ([]Aggregate, error)
}

// HourStat is one subject's traffic in one hour, from the hourly rollups.
type HourStat struct {
	Requests int64
	P95      time.Duration // 0 when unknown
}

// HistorySource reads hourly rollups for baselines.
type HistorySource interface {
	// Hours calls fn with the rollup of every subject of kind in each of
	// hours (starts of whole UTC hours, ascending, no repeats) that has
	// one; hour is the start of the rollup's hour and subject is "" for
	// SubjectGlobal. A subject without a rollup in an hour is not passed
	// for it: the evaluator treats that as missing history rather than
	// zero, so a key created last week is not compared with the weeks
	// before it existed. Rows may come in any order; a source that passes
	// one subject's hours one after another (as the rollups are stored)
	// saves the evaluator a lookup per row. fn runs on the caller's
	// goroutine before Hours returns, and may keep subject. The evaluator
	// calls Hours from one pass at a time, once per subject kind an hour,
	// for six hours (28 after a restart): four of them a week apart.
	Hours(kind SubjectKind, hours []time.Time, fn func(subject string, hour time.Time, st HourStat)) error
}

// QuotaUsage is how much of its limits one key has used.
type QuotaUsage struct {
	KeyID string
	Owner string
	Tier  string
	// HourlyUsed is the fraction of the hourly token bucket consumed,
	// 0 (full bucket) to 1 (empty bucket).
	HourlyUsed float64
	// MonthlyUsed requests counted against MonthlyQuota this month;
	// MonthlyQuota 0 means the key has no monthly quota.
	MonthlyUsed  int64
	MonthlyQuota int64
}

// QuotaSource reads the limiter's view of quota usage.
type QuotaSource interface {
	// Quotas returns the usage of keys at now. Keys with no usage may be
	// left out. The slice is not retained.
	Quotas(now time.Time) ([]QuotaUsage, error)
}

// CalendarSource tells how much to raise alert severities at a moment,
// from the active [[calendar]] rules' alert_severity_boost (the
// wedding-day Saturday escalation). 0 means no boost.
type CalendarSource interface {
	SeverityBoost(now time.Time) int
}

// KeyDirectory names keys for people: an alert on a key says which one
// by its name and owner, not by its id alone.
type KeyDirectory interface {
	// KeyName returns the name and owner of the key with id; ok is false
	// when there is no such key. The evaluator asks only for keys whose
	// alert condition holds, once per key in a pass.
	KeyName(id string) (name, owner string, ok bool)
}
