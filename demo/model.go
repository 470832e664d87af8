package demo

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The traffic model. Rates are requests per second at the busiest moment
// of an ordinary day (Rhythm 1) and a -rate of 1; the sum over all
// personas is about 2.6 a second, which keeps every well-behaved key
// inside its tier's limits on any day of the week.

// Endpoint is one operation of the demo wedding API.
type Endpoint struct {
	Name   string // what it does, for people: "list guests"
	Method string
	// Pattern is the path in http.ServeMux syntax; the generator fills
	// the {wildcards} with plausible ids.
	Pattern string
	// Latency is log-normal: Median, and Sigma the standard deviation of
	// its logarithm (0.35 puts the 95th percentile at 1.8 × the median).
	Median time.Duration
	Sigma  float64
	// ServerErrors is the share of 5xx answers outside incidents.
	ServerErrors float64
	// ClientErrors is the share answered with ClientStatus (a 404 for an
	// unknown id, a 422 for a form that does not validate).
	ClientErrors float64
	ClientStatus int
	// BodyMin and BodyMax bound the request body the generator sends
	// (0: no body); ResponseBytes is the typical size of a 200's body.
	BodyMin, BodyMax int64
	ResponseBytes    int
}

// The endpoints, in the order of the endpoints table.
const (
	epGuestsList = iota
	epGuestGet
	epGuestUpdate
	epGuestAdd
	epFormGet
	epFormSubmissions
	epFormSubmit
	epTimelineGet
	epTimelineUpdate
	epClientGet
	epClientCreate
	epPhotoUpload
	epVenues
	epRSVPGet
	epRSVPSubmit
	epHealth
	numEndpoints
)

// Endpoints is the demo API. The photo upload is the slow endpoint that
// the performance_degradation alert is tuned to notice.
var endpoints = [numEndpoints]Endpoint{
	epGuestsList:      {Name: "list guests", Method: "GET", Pattern: "/api/guests/{event}", Median: 60 * time.Millisecond, Sigma: 0.45, ServerErrors: 0.008, ClientErrors: 0.01, ClientStatus: 404, ResponseBytes: 6000},
	epGuestGet:        {Name: "show guest", Method: "GET", Pattern: "/api/guests/{event}/{guest}", Median: 25 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.005, ClientErrors: 0.03, ClientStatus: 404, ResponseBytes: 450},
	epGuestUpdate:     {Name: "update RSVP", Method: "PATCH", Pattern: "/api/guests/{event}/{guest}", Median: 45 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.01, ClientErrors: 0.03, ClientStatus: 422, BodyMin: 80, BodyMax: 400, ResponseBytes: 450},
	epGuestAdd:        {Name: "add guest", Method: "POST", Pattern: "/api/guests/{event}", Median: 55 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.01, ClientErrors: 0.04, ClientStatus: 422, BodyMin: 150, BodyMax: 600, ResponseBytes: 450},
	epFormGet:         {Name: "show form", Method: "GET", Pattern: "/api/forms/{form}", Median: 35 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.005, ClientErrors: 0.01, ClientStatus: 404, ResponseBytes: 2200},
	epFormSubmissions: {Name: "list submissions", Method: "GET", Pattern: "/api/forms/{form}/submissions", Median: 90 * time.Millisecond, Sigma: 0.5, ServerErrors: 0.01, ClientErrors: 0.01, ClientStatus: 404, ResponseBytes: 9000},
	epFormSubmit:      {Name: "submit form", Method: "POST", Pattern: "/api/forms/{form}/submissions", Median: 80 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.01, ClientErrors: 0.05, ClientStatus: 422, BodyMin: 300, BodyMax: 3000, ResponseBytes: 300},
	epTimelineGet:     {Name: "show timeline", Method: "GET", Pattern: "/api/timeline/{event}", Median: 50 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.008, ClientErrors: 0.01, ClientStatus: 404, ResponseBytes: 4000},
	epTimelineUpdate:  {Name: "move timeline item", Method: "PUT", Pattern: "/api/timeline/{event}/items/{item}", Median: 70 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.01, ClientErrors: 0.03, ClientStatus: 422, BodyMin: 100, BodyMax: 500, ResponseBytes: 350},
	epClientGet:       {Name: "show client", Method: "GET", Pattern: "/api/clients/{client}", Median: 30 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.005, ClientErrors: 0.02, ClientStatus: 404, ResponseBytes: 800},
	epClientCreate:    {Name: "create client", Method: "POST", Pattern: "/api/clients", Median: 65 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.01, ClientErrors: 0.06, ClientStatus: 422, BodyMin: 200, BodyMax: 900, ResponseBytes: 800},
	epPhotoUpload:     {Name: "upload photo", Method: "POST", Pattern: "/api/photos/upload", Median: 1400 * time.Millisecond, Sigma: 0.35, ServerErrors: 0.015, ClientErrors: 0.02, ClientStatus: 413, BodyMin: 64 << 10, BodyMax: 320 << 10, ResponseBytes: 250},
	epVenues:          {Name: "search venues", Method: "GET", Pattern: "/api/public/venues", Median: 120 * time.Millisecond, Sigma: 0.5, ServerErrors: 0.005, ResponseBytes: 12000},
	epRSVPGet:         {Name: "open RSVP page", Method: "GET", Pattern: "/api/public/rsvp/{code}", Median: 40 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.005, ClientErrors: 0.04, ClientStatus: 404, ResponseBytes: 1500},
	epRSVPSubmit:      {Name: "answer RSVP", Method: "POST", Pattern: "/api/public/rsvp/{code}", Median: 60 * time.Millisecond, Sigma: 0.4, ServerErrors: 0.008, ClientErrors: 0.05, ClientStatus: 422, BodyMin: 100, BodyMax: 700, ResponseBytes: 300},
	epHealth:          {Name: "health check", Method: "GET", Pattern: "/healthz", Median: 2 * time.Millisecond, Sigma: 0.3, ResponseBytes: 15},
}

// Endpoints returns a copy of the demo API's endpoints.
func Endpoints() []Endpoint { return append([]Endpoint(nil), endpoints[:]...) }

// KeyUse says what a persona presents.
type KeyUse uint8

// What a persona presents.
const (
	UseOwnKey KeyUse = iota // its own key
	NoKey                   // nothing: public pages, health checks, and clients that forgot
	BadKey                  // a made-up key, or none, on protected routes
)

// Persona is one kind of caller: a customer's integration with its own
// key, the public, or noise.
type Persona struct {
	// Role identifies the persona; it is stored in the key's meta
	// ("demo": role) so a later run finds the key again.
	Role    string
	Name    string // the key's name
	OwnerID string
	Tier    string
	Scopes  []string
	// Revoked keys are revoked at creation: their calls are answered
	// REVOKED (an old integration nobody switched off).
	Revoked bool
	Use     KeyUse

	// Rate is requests a second at Rhythm 1; Steady callers (health
	// checks) ignore the rhythm.
	Rate   float64
	Steady bool
	Mix    []Weighted
	// Abuse, when set, replaces Rate and Mix in live traffic: the
	// persona's history is ordinary, and what it does now is not.
	Abuse []AbuseStream

	UserAgents []string
	// Clients is the number of client addresses the persona's requests
	// come from (a customer's few servers; the public's many phones).
	Clients   int
	Countries []string
}

// Weighted is an endpoint with its share of a mix.
type Weighted struct {
	Endpoint int
	Weight   float64
}

// AbuseStream is one part of an abusive client's live traffic.
type AbuseStream struct {
	Endpoint int
	Rate     float64 // requests a second at -rate 1, whatever the hour
	// BackOffOnQuota slows the stream to one request every 30 s once
	// the API answers QUOTA_EXCEEDED: even a runaway script notices a
	// quota that renews only next month.
	BackOffOnQuota bool
}

// Roles of the personas that tests and the command refer to.
const (
	RoleEnterprise = "enterprise-planner"
	RoleAbuser     = "guestlist-sync"
)

// personas is who calls the demo API. Scopes are chosen so that the
// photographer and the hobby planner now and then call something their
// key does not allow (INSUFFICIENT_SCOPE), as real integrations do.
var personas = []Persona{
	{
		Role: RoleEnterprise, Name: "Bloom & Vow planner suite", OwnerID: "org_bloomvow", Tier: "enterprise",
		Scopes: []string{"forms:read", "forms:write", "guests:read", "guests:write", "timeline:read", "timeline:write",
			"clients:read", "clients:write", "analytics:read"},
		Rate: 1.2,
		Mix: []Weighted{{epGuestsList, 18}, {epGuestGet, 14}, {epGuestUpdate, 9}, {epGuestAdd, 4}, {epTimelineGet, 15},
			{epTimelineUpdate, 5}, {epFormGet, 9}, {epFormSubmissions, 8}, {epClientGet, 10}, {epClientCreate, 2}, {epPhotoUpload, 5}},
		UserAgents: []string{"BloomVow/4.2 (iPhone; iOS 18.1)", "BloomVow/4.2 (Android 15)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15"},
		Clients:    6, Countries: []string{"US", "US", "US", "CA", "GB"},
	},
	{
		Role: "venue-manager", Name: "Ever After Venues booking site", OwnerID: "org_everafter", Tier: "premium",
		Scopes: []string{"forms:read", "forms:write", "guests:read", "timeline:read", "timeline:write"},
		Rate:   0.4,
		Mix: []Weighted{{epTimelineGet, 30}, {epTimelineUpdate, 12}, {epFormGet, 20}, {epFormSubmissions, 15},
			{epFormSubmit, 10}, {epGuestsList, 13}},
		UserAgents: []string{"EverAfter-Booking/2.8 (+https://everafter.example)", "node-fetch/3.3"},
		Clients:    3, Countries: []string{"GB", "GB", "IE"},
	},
	{
		Role: "photographer", Name: "Lace & Lens photo sync", OwnerID: "org_lacelens", Tier: "basic",
		Scopes:     []string{"guests:read", "timeline:read"},
		Rate:       0.12,
		Mix:        []Weighted{{epPhotoUpload, 50}, {epTimelineGet, 28}, {epGuestsList, 18}, {epTimelineUpdate, 4}},
		UserAgents: []string{"LaceLens-Uploader/1.9 (Windows NT 10.0)", "LaceLens/1.9 (iPad; iOS 17.6)"},
		Clients:    2, Countries: []string{"AU", "NZ"},
	},
	{
		Role: "stationer", Name: "Petal Post invitations", OwnerID: "org_petalpost", Tier: "basic",
		Scopes:     []string{"guests:read", "forms:read"},
		Rate:       0.1,
		Mix:        []Weighted{{epGuestsList, 40}, {epGuestGet, 30}, {epFormGet, 20}, {epFormSubmissions, 10}},
		UserAgents: []string{"python-requests/2.32.3", "PetalPost-Sync/0.7"},
		Clients:    1, Countries: []string{"US"},
	},
	{
		Role: "hobby-planner", Name: "Sam's wedding spreadsheet", OwnerID: "usr_sam", Tier: "free",
		Scopes:     []string{"guests:read", "forms:read", "timeline:read"},
		Rate:       0.004,
		Mix:        []Weighted{{epGuestsList, 50}, {epTimelineGet, 35}, {epFormSubmit, 15}},
		UserAgents: []string{"Google-Apps-Script"},
		Clients:    1, Countries: []string{"DE"},
	},
	{
		// The abuser: an ordinary free-tier sync in the history, a runaway
		// script now. It scrapes guest lists far past its burst limit
		// (rate_limit_exceeded, unusual_activity) and bulk-uploads photos
		// through the high-volume route, which counts against the free
		// tier's monthly quota (quota_warning) and slows that route
		// (performance_degradation).
		Role: RoleAbuser, Name: "Guestlist Sync (free trial)", OwnerID: "org_guestsync", Tier: "free",
		Scopes: []string{"guests:read", "forms:read"},
		Rate:   0.003,
		Mix:    []Weighted{{epGuestsList, 70}, {epFormGet, 30}},
		Abuse: []AbuseStream{
			{Endpoint: epGuestsList, Rate: 8},
			{Endpoint: epPhotoUpload, Rate: 16, BackOffOnQuota: true},
		},
		UserAgents: []string{"Go-http-client/1.1"},
		Clients:    1, Countries: []string{"NL"},
	},
	{
		Role: "retired-integration", Name: "Old Zapier zap", OwnerID: "org_bloomvow", Tier: "basic",
		Scopes: []string{"guests:read"}, Revoked: true,
		Rate: 0.03, Steady: true,
		Mix:        []Weighted{{epGuestsList, 1}},
		UserAgents: []string{"Zapier"},
		Clients:    1, Countries: []string{"US"},
	},
	{
		Role: "guests", Name: "wedding guests on RSVP pages", Use: NoKey,
		Rate:       0.5,
		Mix:        []Weighted{{epRSVPGet, 50}, {epRSVPSubmit, 20}, {epVenues, 30}},
		UserAgents: []string{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1", "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"},
		Clients:    700, Countries: []string{"US", "US", "US", "GB", "GB", "CA", "AU", "IE", "DE", "FR", "MX", "IN"},
	},
	{
		Role: "strangers", Name: "clients without a valid key", Use: BadKey,
		Rate:       0.05,
		Mix:        []Weighted{{epGuestsList, 40}, {epFormGet, 30}, {epClientGet, 30}},
		UserAgents: []string{"curl/8.5.0", "python-requests/2.31.0", "Mozilla/5.0 zgrab/0.x"},
		Clients:    40, Countries: []string{"US", "CN", "RU", "BR", "VN"},
	},
	{
		Role: "load-balancer", Name: "load balancer health checks", Use: NoKey,
		Rate: 0.2, Steady: true,
		Mix:        []Weighted{{epHealth, 1}},
		UserAgents: []string{"ELB-HealthChecker/2.0"},
		Clients:    2, Countries: []string{""},
	},
}

// dailyCurve is the weekday traffic at each full hour of local time,
// busiest = 1: quieter nights (customers in other time zones keep them
// from going silent), vendors from the morning on, couples in the
// evening. Rhythm interpolates between the hours.
var dailyCurve = [24]float64{
	0.42, 0.36, 0.32, 0.30, 0.30, 0.33, 0.40, 0.52, 0.66, 0.77, 0.84, 0.88,
	0.90, 0.88, 0.86, 0.85, 0.84, 0.86, 0.92, 1.00, 1.00, 0.92, 0.72, 0.54,
}

// weekdayFactor: weekends are busier (Saturday is wedding day).
var weekdayFactor = [7]float64{
	time.Sunday: 1.05, time.Monday: 0.95, time.Tuesday: 0.97, time.Wednesday: 1,
	time.Thursday: 1, time.Friday: 1.02, time.Saturday: 1.15,
}

// Rhythm is the traffic level at t in loc, from 0.29 (a Monday night)
// to 1.15 (a Saturday evening). It changes smoothly: each hour's level
// is reached at the full hour and interpolated linearly in between.
func Rhythm(t time.Time, loc *time.Location) float64 {
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	h := t.Hour()
	frac := (float64(t.Minute()) + float64(t.Second())/60) / 60
	level := dailyCurve[h] + (dailyCurve[(h+1)%24]-dailyCurve[h])*frac
	return level * weekdayFactor[t.Weekday()]
}

// poisson draws from a Poisson distribution of mean lambda: Knuth's
// product of uniforms for small means, a rounded normal for large ones.
func poisson(rng *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 30:
		limit, p, k := math.Exp(-lambda), 1.0, 0
		for {
			p *= rng.Float64()
			if p <= limit {
				return k
			}
			k++
		}
	default:
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*rng.NormFloat64())))
	}
}

// latency draws a log-normal latency for ep.
func (ep *Endpoint) latency(rng *rand.Rand) time.Duration {
	d := float64(ep.Median) * math.Exp(ep.Sigma*rng.NormFloat64())
	// A tail, not a cliff: at most 8 × the median.
	return time.Duration(min(d, 8*float64(ep.Median)))
}

// incidentErrorRate is the share of 5xx answers during an incident.
const incidentErrorRate = 0.9

// outcome is how the upstream answers one call.
type outcome struct {
	status  int
	latency time.Duration
	bytes   int64 // response body
}

// decide draws ep's answer: the live upstream sleeps and writes it, the
// backfill records it.
func (ep *Endpoint) decide(rng *rand.Rand, incident bool) outcome {
	o := outcome{status: 200, latency: ep.latency(rng), bytes: int64(ep.ResponseBytes)}
	u := rng.Float64()
	serverErrors := ep.ServerErrors
	if incident && ep.Pattern != endpoints[epHealth].Pattern {
		serverErrors = incidentErrorRate
	}
	switch {
	case u < serverErrors:
		o.status = serverErrorStatus(rng, incident)
		o.bytes = 90
		if o.status == 504 {
			o.latency = 5*time.Second + o.latency/10 // a gateway timeout takes its time
		}
	case u < serverErrors+ep.ClientErrors:
		o.status = ep.ClientStatus
		o.bytes = 110
	default:
		// Sizes vary by ±40%, as lists do.
		o.bytes = int64(float64(ep.ResponseBytes) * (0.6 + 0.8*rng.Float64()))
		if ep.Method == "POST" && ep.Pattern != endpoints[epFormSubmit].Pattern && ep.Pattern != endpoints[epRSVPSubmit].Pattern {
			o.status = 201
		}
	}
	return o
}

// serverErrorStatus picks a 5xx: mostly 500 in ordinary times, mostly
// 503 (the database is failing over) during an incident.
func serverErrorStatus(rng *rand.Rand, incident bool) int {
	u := rng.Float64()
	switch {
	case incident && u < 0.75, !incident && u < 0.15:
		return 503
	case u < 0.93:
		return 500
	case incident:
		return 502
	default:
		return 504
	}
}

// fillPath replaces the {wildcards} of pattern with ids like the real
// API's: a couple of hundred weddings, their guests, forms and items.
func fillPath(rng *rand.Rand, pattern string) string {
	if !strings.Contains(pattern, "{") {
		if pattern == endpoints[epVenues].Pattern {
			return pattern + "?city=" + cities[rng.IntN(len(cities))]
		}
		return pattern
	}
	var b strings.Builder
	for rest := pattern; rest != ""; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest, '}')
		switch rest[i+1 : j] {
		case "event":
			b.WriteString("evt_" + strconv.Itoa(1000+rng.IntN(240)))
		case "guest":
			b.WriteString("gst_" + strconv.Itoa(10000+rng.IntN(30000)))
		case "form":
			b.WriteString("frm_" + strconv.Itoa(200+rng.IntN(60)))
		case "item":
			b.WriteString("itm_" + strconv.Itoa(1+rng.IntN(40)))
		case "client":
			b.WriteString("cli_" + strconv.Itoa(500+rng.IntN(400)))
		case "code":
			b.WriteString(rsvpCode(rng))
		}
		rest = rest[j+1:]
	}
	return b.String()
}

var cities = []string{"austin", "brighton", "charleston", "dublin", "edinburgh", "florence", "napa", "savannah", "sydney", "tuscany"}

func rsvpCode(rng *rand.Rand) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [6]byte
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b[:])
}

// clientAddr is the i-th client address of a persona, from the
// documentation ranges (RFC 5737), so no real network is named. Each
// persona gets its own slice of them.
func clientAddr(persona, i int) netip.Addr {
	n := persona*997 + i
	prefixes := [3][3]byte{{192, 0, 2}, {198, 51, 100}, {203, 0, 113}}
	p := prefixes[(n/254)%3]
	return netip.AddrFrom4([4]byte{p[0], p[1], p[2], byte(1 + n%254)})
}

// pick draws an endpoint from a mix.
func pick(rng *rand.Rand, mix []Weighted) int {
	total := 0.0
	for _, w := range mix {
		total += w.Weight
	}
	u := rng.Float64() * total
	for _, w := range mix {
		if u < w.Weight {
			return w.Endpoint
		}
		u -= w.Weight
	}
	return mix[len(mix)-1].Endpoint
}
