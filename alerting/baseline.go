package alerting

import (
	"math"
	"slices"
	"time"
	"unsafe"
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

// recentHistory is one subject kind's hourly rollups of the 24 hours
// before the hour its baselines were last built for. It is kept from one
// rebuild to the next so that, when the hour advances by one, two hours
// are read (the new one, and the one before it again, whose rollup may
// still have been filling at the last rebuild) rather than 24. The same
// hour of past weeks is read anew on every rebuild: four single hours.
// It is not safe for concurrent use; the evaluator holds evalMu.
type recentHistory struct {
	kind  SubjectKind
	until time.Time      // recent holds the hours before it; zero: start over
	index map[string]int // subject value -> number, for at
	// chunks hold the subjects numbered 0 to n-1, subjectChunk a chunk:
	// growing one slice of 10,000 histories copied megabytes on the
	// first rebuild.
	chunks []*[subjectChunk]subjectHistory
	n      int
	// lastName and lastIdx skip the index lookup while a source passes
	// one subject's hours one after another in the same string, as
	// metrics.Reader does; lastIdx < 0: none.
	lastName string
	lastIdx  int
	hours    []time.Time // the hours of the last read, reused
}

// subjectHistory is one subject's rollups while its baseline is built.
type subjectHistory struct {
	name string
	// recent and p95s are indexed by the hour's Unix hour number mod 24,
	// so a new hour overwrites the one that left the window; onRecord has
	// the bit of every slot holding a rollup from the window.
	recent   [recentHours]float64
	p95s     [recentHours]float64 // 0: unknown
	onRecord uint32
	weeks    [baselineWeeks]float64
	nWeeks   int
}

func newRecentHistory(kind SubjectKind) *recentHistory {
	return &recentHistory{kind: kind, index: map[string]int{}, lastIdx: -1}
}

// buildBaselines builds the baselines of kind for hour from scratch,
// with the weeks counted in UTC.
func buildBaselines(src HistorySource, kind SubjectKind, hour time.Time) (*baselines, error) {
	return newRecentHistory(kind).build(src, hour, time.UTC)
}

// build reads the rollups the baselines for hour need that h does not
// hold yet: the hours of the last 24 not read before, and the same local
// wall-clock hour in loc in each of the last four weeks. After a failed
// read h starts over on the next call.
func (h *recentHistory) build(src HistorySource, hour time.Time, loc *time.Location) (*baselines, error) {
	from := hour.Add(-recentHours * time.Hour)
	if h.until.IsZero() || !hour.After(h.until) || !h.until.After(from) {
		clear(h.index)
		h.n = 0
	} else {
		from = h.until.Add(-time.Hour)
	}
	h.until = time.Time{}
	h.lastIdx = -1

	// Forget the slots about to be read: the hours that left the window
	// and the one read again.
	var stale uint32
	for at := from; at.Before(hour); at = at.Add(time.Hour) {
		stale |= 1 << hourSlot(at)
	}
	for i := range h.n {
		s := h.at(i)
		s.onRecord &^= stale
		s.nWeeks = 0
	}
	// One read for all the hours: the same hour in past weeks (oldest
	// first; all before the recent window) and the recent hours.
	hours := h.hours[:0]
	for w := baselineWeeks; w >= 1; w-- {
		if at, ok := sameHourWeeksBack(hour, loc, w); ok {
			hours = append(hours, at)
		}
	}
	weeks := len(hours)
	for at := from; at.Before(hour); at = at.Add(time.Hour) {
		hours = append(hours, at)
	}
	h.hours = hours
	err := src.Hours(h.kind, hours, func(subject string, at time.Time, st HourStat) {
		switch {
		case !at.Before(hour):
		case !at.Before(from):
			s, i := h.subject(subject), hourSlot(at)
			s.recent[i] = float64(st.Requests)
			s.p95s[i] = float64(st.P95)
			s.onRecord |= 1 << i
		case slices.ContainsFunc(hours[:weeks], at.Equal):
			if s := h.subject(subject); s.nWeeks < baselineWeeks {
				s.weeks[s.nWeeks] = float64(st.Requests)
				s.nWeeks++
			}
		}
	})
	if err != nil {
		return nil, err
	}
	out := h.baselines(hour)
	h.prune()
	h.until = hour
	return out, nil
}

// hourSlot is the slot of the hour starting at t in a subject's recent
// hours.
func hourSlot(t time.Time) uint {
	return uint(t.Unix()/3600) % recentHours
}

const subjectChunk = 256

// at returns subject number i.
func (h *recentHistory) at(i int) *subjectHistory {
	return &h.chunks[i/subjectChunk][i%subjectChunk]
}

// subject returns the history of a subject value, adding it if new.
func (h *recentHistory) subject(name string) *subjectHistory {
	// The same string, not just equal bytes: comparing the bytes of
	// different subjects cost as much as the lookup it saves.
	if h.lastIdx >= 0 && len(name) == len(h.lastName) && unsafe.StringData(name) == unsafe.StringData(h.lastName) {
		return h.at(h.lastIdx)
	}
	i, ok := h.index[name]
	if !ok {
		i = h.n
		if i/subjectChunk == len(h.chunks) {
			h.chunks = append(h.chunks, new([subjectChunk]subjectHistory))
		}
		h.n++
		h.index[name] = i
		*h.at(i) = subjectHistory{name: name}
	}
	h.lastName, h.lastIdx = name, i
	return h.at(i)
}

// baselines works out every subject's baseline for hour.
func (h *recentHistory) baselines(hour time.Time) *baselines {
	out := &baselines{
		kind:  h.kind,
		hour:  hour,
		index: make(map[string]int, h.n),
		p95:   make(map[string]time.Duration, h.n),
	}
	first := hourSlot(hour) // the slot of the oldest hour in the window
	var series, p95s [recentHours]float64
	for i := range h.n {
		s := h.at(i)
		// The recent hours oldest first, from the first on record; hours
		// without a rollup after it count as no traffic.
		n, nP95 := 0, 0
		for k := range uint(recentHours) {
			slot := (first + k) % recentHours
			on := s.onRecord&(1<<slot) != 0
			switch {
			case on:
				series[n] = s.recent[slot]
				n++
				if s.p95s[slot] > 0 {
					p95s[nP95] = s.p95s[slot]
					nP95++
				}
			case n > 0:
				series[n] = 0
				n++
			}
		}
		b, ok := seasonalBaseline(s.weeks[:s.nWeeks])
		if !ok && n > 0 {
			b, ok = ewmaBaseline(series[:n])
		}
		if ok {
			out.index[s.name] = len(out.entries)
			out.entries = append(out.entries, baselineEntry{subject: s.name, b: b})
		}
		if nP95 > 0 {
			out.p95[s.name] = time.Duration(median(p95s[:nP95]))
		}
	}
	return out
}

// prune drops the subjects without a rollup in the recent hours: their
// weeks are read again on every rebuild, so nothing is lost, and keys
// that stopped sending traffic do not accumulate.
func (h *recentHistory) prune() {
	for i := 0; i < h.n; {
		s := h.at(i)
		if s.onRecord != 0 {
			i++
			continue
		}
		delete(h.index, s.name)
		h.n--
		if i != h.n {
			*s = *h.at(h.n)
			h.index[s.name] = i
		}
		*h.at(h.n) = subjectHistory{}
	}
	h.lastIdx = -1
}

// sameHourWeeksBack returns the UTC hour that starts at the same local
// wall-clock time in loc as hour did, weeks weeks earlier, so the weekly
// rhythm of local traffic survives daylight-saving changes. A wall-clock
// time that did not exist that day (skipped when the clocks went forward)
// has no sample; one that happened twice (the clocks went back) is taken
// at its first occurrence.
func sameHourWeeksBack(hour time.Time, loc *time.Location, weeks int) (time.Time, bool) {
	l := hour.In(loc)
	t := time.Date(l.Year(), l.Month(), l.Day()-7*weeks, l.Hour(), l.Minute(), 0, 0, loc)
	same := func(u time.Time) bool {
		return u.Day() == t.Day() && u.Hour() == l.Hour() && u.Minute() == l.Minute()
	}
	if !same(t) {
		return time.Time{}, false
	}
	// time.Date does not promise which of a repeated time it returns.
	for _, back := range []time.Duration{time.Hour, 30 * time.Minute} {
		if u := t.Add(-back); same(u) {
			t = u
			break
		}
	}
	return t.UTC(), true
}
