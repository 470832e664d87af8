package alerting

import (
	"math"
	"slices"
	"time"
)

// How unusual_activity decides that traffic is unusual.
//
// Every subject (key, owner, route or the whole API) gets a baseline of its
// own, rebuilt once an hour from the hourly rollups, never from raw
// records:
//
//  1. Seasonal: traffic has a weekly rhythm (Saturday afternoon is not
//     Tuesday night), so the reference for the current hour is the same
//     hour of the week in each of the last four weeks. With at least three
//     of those four hours on record, the baseline is their median m and
//     their median absolute deviation MAD = median(|xᵢ − m|). Median and MAD
//     are robust: one past incident among the samples moves neither,
//     where it would drag a mean and a standard deviation.
//  2. Fallback: a subject with less history (a new key, a fresh install)
//     is compared with its recent hours instead: an exponentially weighted
//     moving average (α = 0.3 per hour) of the last 24 hours since it was
//     first seen, and an exponentially weighted mean absolute deviation
//     around it, scaled by 0.8453 (= 0.6745/0.7979, the ratio of MAD to
//     mean absolute deviation for normal data) so it stands in for a MAD.
//     Fewer than three hours of history: no baseline, no alert.
//
// The current rate x is the requests of the rule's window scaled to an
// hour. Its score is the robust z-score
//
//	score = |x − m| / (1.4826 · max(MAD, floor))
//
// where 1.4826·MAD estimates the standard deviation of normal data and the
// floor, max(1, m/10) requests an hour, keeps a perfectly steady history
// (MAD = 0) from turning every small wobble into an infinite score. The
// condition holds when score ≥ Threshold (5 by default), the deviation is
// in the rule's Direction (spike: x > m, drop: x < m), and the volume
// floor is met: for a spike the window saw at least MinRequests requests,
// for a drop the baseline expected at least MinRequests in the window. A
// resolved alert is followed by the rule's Cooldown, during which the same
// subject opens no new alert.

const (
	baselineWeeks    = 4   // same hour of the week, this many weeks back
	minSeasonalWeeks = 3   // fewer and the EWMA fallback is used
	recentHours      = 24  // hours of recent history for the fallback and p95
	minRecentHours   = 3   // fewer and there is no baseline
	ewmaAlpha        = 0.3 // weight of the newest hour
	madPerMeanAbsDev = 0.6745 / 0.7979
	madToSigma       = 1.4826
)

// baselineMethod names how a baseline was made, for the alert's text.
type baselineMethod string

const (
	methodSeasonal baselineMethod = "same hour of week"
	methodEWMA     baselineMethod = "recent hours (EWMA)"
)

// baseline is what a subject's hourly request count usually is.
type baseline struct {
	median  float64 // requests per hour
	mad     float64 // median absolute deviation, or its EWMA stand-in
	samples int
	method  baselineMethod
}

// spread is the deviation the score divides by, with the floor applied.
func (b baseline) spread() float64 {
	return madToSigma * max(b.mad, 1, b.median/10)
}

// score is the robust z-score of an hourly rate x.
func (b baseline) score(x float64) float64 {
	return math.Abs(x-b.median) / b.spread()
}

// median of values; it sorts them in place.
func median(values []float64) float64 {
	slices.Sort(values)
	n := len(values)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

// seasonalBaseline is the median and MAD of the same hour in past weeks.
func seasonalBaseline(samples []float64) (baseline, bool) {
	if len(samples) < minSeasonalWeeks {
		return baseline{}, false
	}
	var buf [baselineWeeks]float64
	vals := append(buf[:0], samples...)
	m := median(vals)
	for i, v := range samples {
		vals[i] = math.Abs(v - m)
	}
	return baseline{median: m, mad: median(vals), samples: len(samples), method: methodSeasonal}, true
}

// ewmaBaseline smooths a series of hourly counts, oldest first.
func ewmaBaseline(series []float64) (baseline, bool) {
	if len(series) < minRecentHours {
		return baseline{}, false
	}
	mean, dev := series[0], 0.0
	for _, v := range series[1:] {
		dev += ewmaAlpha * (math.Abs(v-mean) - dev)
		mean += ewmaAlpha * (v - mean)
	}
	return baseline{median: mean, mad: dev * madPerMeanAbsDev, samples: len(series), method: methodEWMA}, true
}

// baselines holds every subject's baselines of one kind for one hour.
type baselines struct {
	kind    SubjectKind
	hour    time.Time
	index   map[string]int           // subject value -> entries index
	entries []baselineEntry          // unusual_activity
	p95     map[string]time.Duration // median hourly p95 of the past day
}

// baselineEntry is one subject's traffic baseline. seen marks the
// subjects that had traffic in an evaluation, so the others can be checked
// for a drop without building a set every pass.
type baselineEntry struct {
	subject string
	b       baseline
	seen    uint64
}

// subjectHistory gathers one subject's rollups while baselines are built.
type subjectHistory struct {
	weeks  [baselineWeeks]float64
	nWeeks int
	recent [recentHours]float64 // oldest first
	first  int                  // index of the first recent hour on record; -1: none
	p95s   [recentHours]float64
	nP95   int
}

// buildBaselines reads the rollups a baseline for hour needs: the same
// hour in each of the last four weeks and the 24 hours before it.
func buildBaselines(src HistorySource, kind SubjectKind, hour time.Time) (*baselines, error) {
	// Read every hour first, so the working set can be sized once: growing
	// it by appends copied megabytes per rebuild.
	var weeks [baselineWeeks]map[string]HourStat
	var recent [recentHours]map[string]HourStat
	largest := 0
	for w := range weeks {
		rows, err := src.Hour(kind, hour.Add(-time.Duration(w+1)*7*24*time.Hour))
		if err != nil {
			return nil, err
		}
		weeks[w] = rows
		largest = max(largest, len(rows))
	}
	for i := range recent {
		rows, err := src.Hour(kind, hour.Add(-time.Duration(recentHours-i)*time.Hour))
		if err != nil {
			return nil, err
		}
		recent[i] = rows
		largest = max(largest, len(rows))
	}

	index := make(map[string]int, largest)
	hist := make([]subjectHistory, 0, largest+largest/8)
	get := func(subject string) *subjectHistory {
		i, ok := index[subject]
		if !ok {
			i = len(hist)
			index[subject] = i
			hist = append(hist, subjectHistory{first: -1})
		}
		return &hist[i]
	}
	for _, rows := range weeks {
		for subject, st := range rows {
			h := get(subject)
			h.weeks[h.nWeeks] = float64(st.Requests)
			h.nWeeks++
		}
	}
	for i, rows := range recent {
		for subject, st := range rows {
			h := get(subject)
			h.recent[i] = float64(st.Requests)
			if h.first < 0 {
				h.first = i
			}
			if st.P95 > 0 {
				h.p95s[h.nP95] = float64(st.P95)
				h.nP95++
			}
		}
	}

	out := &baselines{
		kind:  kind,
		hour:  hour,
		index: make(map[string]int, len(index)),
		p95:   make(map[string]time.Duration, len(index)),
	}
	for subject, i := range index {
		h := &hist[i]
		b, ok := seasonalBaseline(h.weeks[:h.nWeeks])
		if !ok && h.first >= 0 {
			b, ok = ewmaBaseline(h.recent[h.first:])
		}
		if ok {
			out.index[subject] = len(out.entries)
			out.entries = append(out.entries, baselineEntry{subject: subject, b: b})
		}
		if h.nP95 > 0 {
			out.p95[subject] = time.Duration(median(h.p95s[:h.nP95]))
		}
	}
	return out, nil
}
