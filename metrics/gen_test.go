package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/apiwarden/apiwarden/decision"
)

// trafficGen makes realistic request records: 50 routes, 1,000 keys with
// their owners, tiers, addresses and user agents, log-normal latencies and
// sizes, apiwarden request ids with some client-supplied ones mixed in.
// It is deterministic for a seed.
type trafficGen struct {
	rng    *rand.Rand
	now    time.Time
	rps    float64
	seq    uint64
	routes []genRoute
	keys   []genKey
	uas    []string
}

type genRoute struct {
	pattern string
	method  string
}

type genKey struct {
	id, owner, tier, country, ua string
	ips                          []netip.Addr
}

func newTrafficGen(seed uint64, start time.Time, rps float64) *trafficGen {
	g := &trafficGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: start, rps: rps}
	resources := []string{"forms", "clients", "guests", "timeline", "vendors", "venues", "invoices", "photos", "tasks", "notes"}
	suffixes := []struct{ path, method string }{
		{"", "GET"}, {"/*", "GET"}, {"", "POST"}, {"/*", "PATCH"}, {"/*/items", "GET"},
	}
	for _, r := range resources {
		for _, s := range suffixes {
			g.routes = append(g.routes, genRoute{"/api/" + r + s.path, s.method})
		}
	}
	g.uas = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"python-requests/2.32.3", "Go-http-client/1.1", "axios/1.7.7", "curl/8.5.0", "okhttp/4.12.0",
		"PostmanRuntime/7.42.0", "node-fetch/1.0", "Zapier", "weddingplanner-ios/4.2.1 CFNetwork/1568 Darwin/24.1.0",
		"weddingplanner-android/4.2.0 okhttp/4.12.0",
	}
	tiers := []string{"free", "free", "free", "basic", "basic", "premium", "enterprise"}
	countries := []string{"US", "US", "US", "GB", "DE", "FR", "CA", "AU", "NL", "ES", "IT", "IE"}
	owners := 300
	for i := range 1000 {
		k := genKey{
			id:      fmt.Sprintf("key_%08x", 0x1000000+i*7919),
			owner:   fmt.Sprintf("org_%05d", g.rng.IntN(owners)),
			tier:    tiers[g.rng.IntN(len(tiers))],
			country: countries[g.rng.IntN(len(countries))],
			ua:      g.uas[g.rng.IntN(len(g.uas))],
		}
		for range 1 + g.rng.IntN(4) {
			if g.rng.IntN(20) == 0 {
				var a [16]byte
				a[0], a[1] = 0x2a, 0x02
				for j := 2; j < 16; j++ {
					a[j] = byte(g.rng.Uint32())
				}
				k.ips = append(k.ips, netip.AddrFrom16(a))
			} else {
				k.ips = append(k.ips, netip.AddrFrom4([4]byte{byte(1 + g.rng.IntN(223)), byte(g.rng.Uint32()), byte(g.rng.Uint32()), byte(g.rng.Uint32())}))
			}
		}
		g.keys = append(g.keys, k)
	}
	return g
}

// next fills rec with the next request, arriving after an exponential
// gap at the generator's rate.
func (g *trafficGen) next(rec *Record) {
	g.now = g.now.Add(time.Duration(g.rng.ExpFloat64() / g.rps * float64(time.Second)))
	g.seq++
	// Zipf-like popularity: a few keys and routes carry most traffic.
	k := &g.keys[int(float64(len(g.keys))*math.Pow(g.rng.Float64(), 2.5))]
	rt := &g.routes[int(float64(len(g.routes))*math.Pow(g.rng.Float64(), 1.8))]

	status, code := 200, decision.Valid
	switch p := g.rng.IntN(1000); {
	case p < 20:
		status, code = 401, []decision.Code{decision.MissingKey, decision.NotFound, decision.Expired}[g.rng.IntN(3)]
	case p < 30:
		status, code = 403, decision.InsufficientScope
	case p < 60:
		status, code = 429, decision.RateLimited
	case p < 70:
		status = 500 + []int{0, 2, 3, 4}[g.rng.IntN(4)]
	case p < 110:
		status = []int{400, 404, 409, 422}[g.rng.IntN(4)]
	case p < 150:
		status = 304
	case p < 260 && rt.method == "POST":
		status = 201
	}
	latency := time.Duration(math.Exp(g.rng.NormFloat64()*0.8+math.Log(40)) * float64(time.Millisecond))
	up := latency - time.Duration(100+g.rng.IntN(700))*time.Microsecond
	if code != decision.Valid {
		latency, up = time.Duration(50+g.rng.IntN(400))*time.Microsecond, 0
	}
	path := rt.pattern
	for i := 0; i < len(path); i++ {
		if path[i] == '*' {
			path = path[:i] + strconv.Itoa(1+int(math.Exp(g.rng.Float64()*12))) + path[i+1:]
		}
	}
	if g.rng.IntN(5) == 0 {
		path += "?page=" + strconv.Itoa(1+g.rng.IntN(20))
	}
	id := "aw1-" + strconv.FormatUint(g.seq, 10)
	if g.rng.IntN(10) == 0 {
		id = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", g.rng.Uint32(), g.rng.IntN(1<<16), g.rng.IntN(1<<12), g.rng.IntN(1<<12), g.rng.Uint64()&(1<<48-1))
	}
	ua := k.ua
	if g.rng.IntN(10) == 0 {
		ua = g.uas[g.rng.IntN(len(g.uas))]
	}
	var reqBytes int64
	if rt.method != "GET" {
		reqBytes = int64(math.Exp(g.rng.NormFloat64()*0.7 + math.Log(600)))
	}
	cache := CacheUnknown
	if rt.method == "GET" && g.rng.IntN(4) == 0 {
		cache = []CacheStatus{CacheHit, CacheHit, CacheMiss, CacheStale, CacheBypass}[g.rng.IntN(5)]
	}
	*rec = Record{
		Time:            g.now,
		RequestID:       id,
		Method:          rt.method,
		Route:           rt.pattern,
		Path:            path,
		Status:          status,
		Latency:         latency,
		UpstreamLatency: max(up, 0),
		RequestBytes:    reqBytes,
		ResponseBytes:   int64(math.Exp(g.rng.NormFloat64()*1.0 + math.Log(2000))),
		KeyID:           k.id,
		OwnerID:         k.owner,
		Tier:            k.tier,
		ClientIP:        k.ips[g.rng.IntN(len(k.ips))],
		Country:         k.country,
		UserAgent:       ua,
		ErrorCategory:   CategorizeError(status, code),
		CacheStatus:     cache,
		Decision:        code,
	}
}

// randomRecord makes a record with every field random, edge cases
// included, for codec round trips.
func randomRecord(rng *rand.Rand) Record {
	str := func(maxLen int) string {
		if rng.IntN(5) == 0 {
			return ""
		}
		alphabet := []rune("abcXYZ019/-_?=&é日\x00 \n🎉")
		n := rng.IntN(maxLen + 1)
		out := make([]rune, n)
		for i := range out {
			out[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(out)
	}
	var ip netip.Addr
	switch rng.IntN(4) {
	case 1:
		ip = netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), 1, 2})
	case 2:
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		ip = netip.AddrFrom16(a)
		if rng.IntN(3) == 0 {
			ip = ip.WithZone("eth" + strconv.Itoa(rng.IntN(10)))
		}
	case 3:
		ip = netip.AddrFrom16(netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.Uint32())}).As16())
	}
	ids := []string{"", "aw-" + strconv.Itoa(rng.IntN(1e6)), "req-000" + strconv.Itoa(rng.IntN(100)), "0", "00",
		"x" + strconv.FormatUint(rng.Uint64(), 10) + strconv.FormatUint(rng.Uint64(), 10), str(20), "123456789012345678901234567890"}
	dur := func() time.Duration {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return time.Duration(rng.Int64N(int64(10 * time.Minute)))
		}
		return time.Duration(rng.Int64N(int64(time.Second)))
	}
	return Record{
		Time:            time.Unix(1_700_000_000+rng.Int64N(86400*3), rng.Int64N(1e9)),
		RequestID:       ids[rng.IntN(len(ids))],
		Method:          []string{"GET", "POST", "", "PROPFIND"}[rng.IntN(4)],
		Route:           str(30),
		Path:            str(600),
		Status:          100 + rng.IntN(500),
		Latency:         dur(),
		UpstreamLatency: dur(),
		RequestBytes:    rng.Int64N(1 << 40),
		ResponseBytes:   []int64{0, 1, math.MaxInt64, rng.Int64N(1 << 20)}[rng.IntN(4)],
		KeyID:           str(10),
		OwnerID:         str(10),
		Tier:            []string{"", "free", "enterprise"}[rng.IntN(3)],
		ClientIP:        ip,
		Country:         []string{"", "US", "T1"}[rng.IntN(3)],
		UserAgent:       str(300),
		ErrorCategory:   ErrorCategory(rng.IntN(int(errorCategoryCount))),
		CacheStatus:     CacheStatus(rng.IntN(int(cacheStatusCount))),
		Decision:        []decision.Code{decision.None, decision.Valid, decision.RateLimited, decision.QuotaExceeded}[rng.IntN(4)],
	}
}
