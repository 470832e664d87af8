package alerting

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// observation is one subject for which a rule's condition holds, with the
// numbers that made it hold (for the alert's text).
type observation struct {
	subject     Subject
	owner, tier string
	name        string  // a key subject's name, when the directory knows it
	value       float64 // compared with the threshold

	requests int64
	count    int64         // 5xx or 429, by type
	p95      time.Duration // performance_degradation
	usualP95 time.Duration // performance_degradation, 0 when unknown
	rate     float64       // unusual_activity: requests per hour now
	base     baseline      // unusual_activity
	hourly   float64       // quota_warning
	monthly  int64         // quota_warning
	quota    int64         // quota_warning
}

// ratioHits appends the subjects whose count/requests reaches the
// threshold (rate_limit_exceeded, error_spike).
func ratioHits(r *Rule, aggs []Aggregate, count func(*Aggregate) int64, hits []observation) []observation {
	minReq := max(r.MinRequests, 1)
	for i := range aggs {
		a := &aggs[i]
		if a.Requests < minReq {
			continue
		}
		n := count(a)
		v := float64(n) / float64(a.Requests)
		if v < r.Threshold || !r.admits(a.Subject, a.Owner, a.Tier) {
			continue
		}
		hits = append(hits, observation{subject: a.Subject, owner: a.Owner, tier: a.Tier,
			value: v, requests: a.Requests, count: n})
	}
	return hits
}

func count5xx(a *Aggregate) int64 { return a.Errors5xx }
func count429(a *Aggregate) int64 { return a.RateLimited }

// latencyHits appends the subjects whose p95 is over the absolute
// threshold or over BaselineFactor × their usual p95. The value is the p95
// in milliseconds.
func latencyHits(r *Rule, aggs []Aggregate, base *baselines, hits []observation) []observation {
	minReq := max(r.MinRequests, 1)
	for i := range aggs {
		a := &aggs[i]
		if a.Requests < minReq || a.P95 <= 0 {
			continue
		}
		ms := float64(a.P95) / float64(time.Millisecond)
		over := r.Threshold > 0 && ms > r.Threshold
		var usual time.Duration
		if base != nil {
			usual = base.p95[a.Subject.Value]
		}
		if r.BaselineFactor > 0 && usual > 0 && float64(a.P95) > r.BaselineFactor*float64(usual) {
			over = true
		}
		if !over || !r.admits(a.Subject, a.Owner, a.Tier) {
			continue
		}
		hits = append(hits, observation{subject: a.Subject, owner: a.Owner, tier: a.Tier,
			value: ms, requests: a.Requests, p95: a.P95, usualP95: usual})
	}
	return hits
}

// unusualHits appends the subjects whose traffic is far from their
// baseline, as explained in baseline.go. Subjects with a baseline but no
// traffic now are checked for a drop. gen marks the subjects seen in this
// call; it must differ from every earlier call's.
func unusualHits(r *Rule, aggs []Aggregate, base *baselines, gen uint64, hits []observation) []observation {
	perHour := float64(time.Hour) / float64(r.Window)
	expectedInWindow := func(b baseline) float64 { return b.median / perHour }
	check := func(s Subject, owner, tier string, requests int64, b baseline) {
		rate := float64(requests) * perHour
		spike := rate > b.median
		switch {
		case spike && r.Direction == DirectionDrop, !spike && r.Direction == DirectionSpike:
			return
		case spike && requests < r.MinRequests:
			return
		case !spike && expectedInWindow(b) < float64(r.MinRequests):
			return
		}
		score := b.score(rate)
		if score < r.Threshold || !r.admits(s, owner, tier) {
			return
		}
		hits = append(hits, observation{subject: s, owner: owner, tier: tier,
			value: score, requests: requests, rate: rate, base: b})
	}
	for i := range aggs {
		a := &aggs[i]
		idx, ok := base.index[a.Subject.Value]
		if !ok {
			continue // no baseline yet: nothing to compare with
		}
		e := &base.entries[idx]
		e.seen = gen
		check(a.Subject, a.Owner, a.Tier, a.Requests, e.b)
	}
	if r.Direction == DirectionSpike {
		return hits
	}
	for i := range base.entries {
		e := &base.entries[i]
		if e.seen != gen {
			check(Subject{Kind: base.kind, Value: e.subject}, "", "", 0, e.b)
		}
	}
	return hits
}

// quotaHits appends the keys past the threshold of their quota.
func quotaHits(r *Rule, usage []QuotaUsage, hits []observation) []observation {
	for i := range usage {
		u := &usage[i]
		monthly := 0.0
		if u.MonthlyQuota > 0 {
			monthly = float64(u.MonthlyUsed) / float64(u.MonthlyQuota)
		}
		var v float64
		switch r.Quota {
		case QuotaHourly:
			v = u.HourlyUsed
		case QuotaMonthly:
			v = monthly
		default:
			v = max(u.HourlyUsed, monthly)
		}
		s := Subject{Kind: SubjectKey, Value: u.KeyID}
		if v < r.Threshold || !r.admits(s, u.Owner, u.Tier) {
			continue
		}
		hits = append(hits, observation{subject: s, owner: u.Owner, tier: u.Tier, value: v,
			hourly: u.HourlyUsed, monthly: u.MonthlyUsed, quota: u.MonthlyQuota})
	}
	return hits
}

// describe writes an alert's summary and description.
func describe(r *Rule, o *observation) (summary, description string) {
	subject := subjectText(o)
	window := formatDuration(r.Window)
	switch r.Type {
	case ErrorSpike:
		summary = fmt.Sprintf("5xx rate %s on %s", percent(o.value), subject)
		description = fmt.Sprintf("%d of %d requests in the last %s were answered with a 5xx status (threshold %s, at least %d requests).",
			o.count, o.requests, window, percent(r.Threshold), r.MinRequests)
	case RateLimitExceeded:
		summary = fmt.Sprintf("%s rate limited on %s of its requests", subject, percent(o.value))
		if o.subject.Kind == SubjectGlobal {
			summary = fmt.Sprintf("%s of all requests rate limited", percent(o.value))
		}
		description = fmt.Sprintf("%d of %d requests in the last %s were answered 429 (threshold %s, at least %d requests).",
			o.count, o.requests, window, percent(r.Threshold), r.MinRequests)
	case PerformanceDegradation:
		summary = fmt.Sprintf("p95 latency %s on %s", formatMillis(o.p95), subject)
		var limits []string
		if r.Threshold > 0 {
			limits = append(limits, fmt.Sprintf("threshold %s ms", trimFloat(r.Threshold)))
		}
		if r.BaselineFactor > 0 && o.usualP95 > 0 {
			limits = append(limits, fmt.Sprintf("usually %s, limit %s× = %s",
				formatMillis(o.usualP95), trimFloat(r.BaselineFactor),
				formatMillis(time.Duration(r.BaselineFactor*float64(o.usualP95)))))
		}
		description = fmt.Sprintf("p95 latency over the last %s is %s across %d requests (%s).",
			window, formatMillis(o.p95), o.requests, strings.Join(limits, "; "))
	case UnusualActivity:
		kind := "spike"
		if o.rate < o.base.median {
			kind = "drop"
		}
		summary = fmt.Sprintf("traffic %s on %s (score %.1f)", kind, subject, o.value)
		if o.subject.Kind == SubjectGlobal {
			summary = fmt.Sprintf("overall traffic %s (score %.1f)", kind, o.value)
		}
		description = fmt.Sprintf("%s requests/hour over the last %s against a usual %s ± %s (%s, %d samples); robust z-score %.1f, threshold %s.",
			trimFloat(o.rate), window, trimFloat(o.base.median), trimFloat(o.base.spread()),
			o.base.method, o.base.samples, o.value, trimFloat(r.Threshold))
	case QuotaWarning:
		which := "hourly limit"
		if o.quota > 0 && float64(o.monthly)/float64(o.quota) >= o.hourly {
			which = "monthly quota"
		}
		summary = fmt.Sprintf("%s used %s of its %s", subject, percent(o.value), which)
		monthly := "no monthly quota"
		if o.quota > 0 {
			monthly = fmt.Sprintf("monthly %d of %d", o.monthly, o.quota)
		}
		description = fmt.Sprintf("Hourly bucket %s used; %s. Threshold %s.",
			percent(o.hourly), monthly, percent(r.Threshold))
	}
	return summary, description
}

// subjectText names an alert's subject in its summary: a key by its name
// and owner when they are known (`key "planner app" of org_42`; the id
// stays in the subject and the key_id label), anything else as
// Subject.String does.
func subjectText(o *observation) string {
	if o.subject.Kind == SubjectGlobal {
		return "all traffic"
	}
	if o.subject.Kind != SubjectKey {
		return o.subject.String()
	}
	who := o.subject.String()
	if o.name != "" {
		who = fmt.Sprintf("key %q", o.name)
	}
	if o.owner != "" {
		who += " of " + o.owner
	}
	return who
}

func percent(f float64) string { return trimFloat(f*100) + "%" }

// trimFloat prints up to one decimal, without a trailing ".0".
func trimFloat(f float64) string {
	return strconv.FormatFloat(float64(int64(f*10+0.5))/10, 'f', -1, 64)
}

func formatMillis(d time.Duration) string {
	return trimFloat(float64(d)/float64(time.Millisecond)) + " ms"
}

// formatDuration prints 5m rather than 5m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
