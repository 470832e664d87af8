package analytics_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// synth makes deterministic synthetic traffic: routes and keys with
// Zipf-like popularity, owners, tiers, log-normal latencies and sizes, a
// realistic mix of statuses and decisions. Records come in time order at
// a constant average rate between start and end.
type synth struct {
	rng    *rand.Rand
	now    time.Time
	gap    float64 // mean gap between records, in nanoseconds
	seq    uint64
	routes []synthRoute
	keys   []synthKey
	// rare, when rareEvery > 0, replaces the key of every rareEvery-th
	// record: a customer who calls a few times a week, so few blocks hold
	// the key. It draws nothing from rng, so the other records stay the
	// same.
	rare      synthKey
	rareEvery uint64
}

type synthRoute struct{ pattern, method string }

type synthKey struct {
	id, owner, tier string
	ip              netip.Addr
}

func newSynth(seed uint64, start, end time.Time, records, keys, routes int) *synth {
	g := &synth{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now: start,
		gap: float64(end.Sub(start)) / float64(records),
	}
	resources := []string{"forms", "clients", "guests", "timeline", "vendors", "venues", "invoices", "photos", "tasks", "notes"}
	suffixes := []synthRoute{{"", "GET"}, {"/*", "GET"}, {"", "POST"}, {"/*", "PATCH"}, {"/*/items", "GET"}}
	for i := 0; len(g.routes) < routes; i++ {
		r, s := resources[i/len(suffixes)%len(resources)], suffixes[i%len(suffixes)]
		prefix := "/api/"
		if n := i / (len(resources) * len(suffixes)); n > 0 {
			prefix = "/api/v" + strconv.Itoa(n+1) + "/"
		}
		g.routes = append(g.routes, synthRoute{prefix + r + s.pattern, s.method})
	}
	tiers := []string{"free", "free", "free", "basic", "basic", "premium", "enterprise"}
	for i := range keys {
		g.keys = append(g.keys, synthKey{
			id:    fmt.Sprintf("key_%06d", i),
			owner: fmt.Sprintf("org_%04d", g.rng.IntN(max(keys*3/10, 1))),
			tier:  tiers[g.rng.IntN(len(tiers))],
			ip:    netip.AddrFrom4([4]byte{byte(1 + g.rng.IntN(223)), byte(g.rng.Uint32()), byte(g.rng.Uint32()), byte(g.rng.Uint32())}),
		})
	}
	return g
}

// next fills rec with the next request.
func (g *synth) next(rec *metrics.Record) {
	g.now = g.now.Add(time.Duration(g.rng.ExpFloat64() * g.gap))
	g.seq++
	k := &g.keys[int(float64(len(g.keys))*math.Pow(g.rng.Float64(), 2.5))]
	if g.rareEvery > 0 && g.seq%g.rareEvery == 0 {
		k = &g.rare
	}
	rt := &g.routes[int(float64(len(g.routes))*math.Pow(g.rng.Float64(), 1.8))]
	status, code := 200, decision.Valid
	switch p := g.rng.IntN(1000); {
	case p < 20:
		status, code = 401, decision.Expired
	case p < 30:
		status, code = 403, decision.InsufficientScope
	case p < 60:
		status, code = 429, decision.RateLimited
	case p < 70:
		status = 500 + 2*g.rng.IntN(3)
	case p < 110:
		status = 404
	case p < 150:
		status = 304
	}
	latency := time.Duration(math.Exp(g.rng.NormFloat64()*0.8+math.Log(40)) * float64(time.Millisecond))
	if code != decision.Valid {
		latency = time.Duration(50+g.rng.IntN(400)) * time.Microsecond
	}
	var reqBytes int64
	if rt.method != "GET" {
		reqBytes = int64(math.Exp(g.rng.NormFloat64()*0.7 + math.Log(600)))
	}
	*rec = metrics.Record{
		Time:          g.now,
		RequestID:     "aw1-" + strconv.FormatUint(g.seq, 10),
		Method:        rt.method,
		Route:         rt.pattern,
		Path:          rt.pattern,
		Status:        status,
		Latency:       latency,
		RequestBytes:  reqBytes,
		ResponseBytes: int64(math.Exp(g.rng.NormFloat64() + math.Log(2000))),
		KeyID:         k.id,
		OwnerID:       k.owner,
		Tier:          k.tier,
		ClientIP:      k.ip,
		Country:       "US",
		UserAgent:     "synth/1.0",
		ErrorCategory: metrics.CategorizeError(status, code),
		Decision:      code,
	}
}

// fillStore writes records of g through a metrics.Recorder in large
// batches: RecordBatch fills the buffer, Flush commits it in one
// transaction, so 10 million records take a few dozen transactions.
func fillStore(st *store.Store, g *synth, records int, now time.Time) error {
	const batch = 1 << 19
	rec, err := metrics.New(metrics.Options{Store: st, BufferSize: batch, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	buf := make([]metrics.Record, batch)
	for done := 0; done < records; {
		n := min(batch, records-done)
		for i := range buf[:n] {
			g.next(&buf[i])
		}
		if took := rec.RecordBatch(buf[:n]); took != n {
			return fmt.Errorf("recorder took %d of %d records", took, n)
		}
		if err := rec.Flush(); err != nil {
			return err
		}
		done += n
	}
	rec.Stop()
	return nil
}
