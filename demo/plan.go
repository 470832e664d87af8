package demo

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// call is one request the model wants made: the generator sends it, the
// backfill decides and records it.
type call struct {
	at        time.Time
	persona   int // index into personas
	endpoint  int // index into endpoints
	path      string
	key       string // presented key; "" for none
	bodyBytes int64
	clientIP  netip.Addr
	country   string
	userAgent string
}

// planner draws the calls of every persona over spans of time. It is not
// safe for concurrent use: the generator's loop and the backfill each own
// one.
type planner struct {
	rng   *rand.Rand
	loc   *time.Location
	scale float64
	// secrets by persona index; "" for personas without a key of their
	// own, or whose key's secret is unknown (a revoked key of an earlier
	// run): those send nothing.
	secrets []string
}

func newPlanner(seed uint64, loc *time.Location, scale float64, keys []Key) *planner {
	p := &planner{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), loc: loc, scale: scale,
		secrets: make([]string, len(personas))}
	for _, k := range keys {
		if i := personaIndex(k.Role); i >= 0 {
			p.secrets[i] = k.Secret
		}
	}
	return p
}

func personaIndex(role string) int {
	return slices.IndexFunc(personas, func(p Persona) bool { return p.Role == role })
}

// active reports whether persona i can send: keyless personas always,
// keyed ones when their secret is known.
func (p *planner) active(i int) bool {
	return personas[i].Use != UseOwnKey || p.secrets[i] != ""
}

// ordinary appends the calls of every persona's ordinary traffic in
// [from, to), following the rhythm, in time order. Personas with an
// Abuse profile are left out when live is set: abuse adds their live
// calls instead.
func (p *planner) ordinary(from, to time.Time, live bool, calls []call) []call {
	span := to.Sub(from)
	if span <= 0 {
		return calls
	}
	start := len(calls)
	level := Rhythm(from.Add(span/2), p.loc)
	for i := range personas {
		pe := &personas[i]
		if !p.active(i) || (live && len(pe.Abuse) > 0) {
			continue
		}
		rate := pe.Rate * p.scale
		if !pe.Steady {
			rate *= level
		}
		for range poisson(p.rng, rate*span.Seconds()) {
			calls = append(calls, p.call(i, pick(p.rng, pe.Mix), from.Add(time.Duration(p.rng.Int64N(int64(span))))))
		}
	}
	sortCalls(calls[start:])
	return calls
}

// abuse appends the live calls of the personas with an Abuse profile in
// [from, to). quotaHit says the API has answered QUOTA_EXCEEDED to the
// persona, so streams that back off do.
func (p *planner) abuse(from, to time.Time, quotaHit func(persona int) bool, calls []call) []call {
	span := to.Sub(from)
	if span <= 0 {
		return calls
	}
	start := len(calls)
	for i := range personas {
		pe := &personas[i]
		if len(pe.Abuse) == 0 || !p.active(i) {
			continue
		}
		for _, s := range pe.Abuse {
			rate := s.Rate * p.scale
			if s.BackOffOnQuota && quotaHit != nil && quotaHit(i) {
				rate = 1.0 / 30
			}
			for range poisson(p.rng, rate*span.Seconds()) {
				calls = append(calls, p.call(i, s.Endpoint, from.Add(time.Duration(p.rng.Int64N(int64(span))))))
			}
		}
	}
	sortCalls(calls[start:])
	return calls
}

// call fills in one call of persona i to endpoint ep at t.
func (p *planner) call(i, ep int, at time.Time) call {
	pe := &personas[i]
	e := &endpoints[ep]
	c := call{
		at:        at,
		persona:   i,
		endpoint:  ep,
		path:      fillPath(p.rng, e.Pattern),
		clientIP:  clientAddr(i, p.rng.IntN(max(pe.Clients, 1))),
		country:   pe.Countries[p.rng.IntN(len(pe.Countries))],
		userAgent: pe.UserAgents[p.rng.IntN(len(pe.UserAgents))],
	}
	if e.BodyMax > 0 {
		c.bodyBytes = e.BodyMin + p.rng.Int64N(e.BodyMax-e.BodyMin+1)
	}
	switch pe.Use {
	case UseOwnKey:
		c.key = p.secrets[i]
	case BadKey:
		// Half send nothing; the others a key that was never issued
		// (its checksum is wrong, so it is refused without a lookup).
		if p.rng.IntN(2) == 0 {
			c.key = "wsk_" + strconv.FormatUint(p.rng.Uint64(), 36) + strconv.FormatUint(p.rng.Uint64(), 36)
		}
	}
	return c
}

func sortCalls(calls []call) {
	slices.SortFunc(calls, func(a, b call) int { return a.at.Compare(b.at) })
}

// incidentPlan says when live incidents happen: the first soon after the
// start, so that the error_spike alert shows within the first minute,
// then one every few minutes.
type incidentPlan struct {
	First      time.Duration // from the start to the first incident
	Length     [2]time.Duration
	Gap        [2]time.Duration // from the end of one to the start of the next
	rng        *rand.Rand
	start, end time.Time // of the current or next incident
}

func (ip *incidentPlan) reset(now time.Time, rng *rand.Rand) {
	ip.rng = rng
	ip.start = now.Add(ip.First)
	ip.end = ip.start.Add(ip.draw(ip.Length))
}

func (ip *incidentPlan) draw(r [2]time.Duration) time.Duration {
	if r[1] <= r[0] {
		return r[0]
	}
	return r[0] + time.Duration(ip.rng.Int64N(int64(r[1]-r[0])))
}

// at reports whether an incident is on at now, moving to the next one
// when the current has ended. now must not go backwards.
func (ip *incidentPlan) at(now time.Time) bool {
	for !now.Before(ip.end) {
		ip.start = ip.end.Add(ip.draw(ip.Gap))
		ip.end = ip.start.Add(ip.draw(ip.Length))
	}
	return !now.Before(ip.start)
}

// historyIncident says whether an incident was on at t in the past.
// Past days have one or two incidents of 5 to 20 minutes, at times drawn
// from the day itself, so that a day always has the same incidents.
func historyIncident(t time.Time, seed uint64) bool {
	day := t.UTC().Truncate(24 * time.Hour)
	rng := rand.New(rand.NewPCG(seed, uint64(day.Unix())))
	n := 1 + rng.IntN(2)
	for range n {
		start := day.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
		length := 5*time.Minute + time.Duration(rng.Int64N(int64(15*time.Minute)))
		if !t.Before(start) && t.Before(start.Add(length)) {
			return true
		}
	}
	return false
}
