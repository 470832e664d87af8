package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/api/httpapi"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/metrics"
)

// Decider decides a request as apiwarden would; *enforce.Engine is one.
type Decider interface {
	Decide(now time.Time, f *enforce.Facts) enforce.Decision
}

var _ Decider = (*enforce.Engine)(nil)

// BackfillOptions configure Backfill. Recorder, Decider and Keys are
// required.
type BackfillOptions struct {
	// Recorder writes the records; Backfill flushes it as it goes but
	// neither runs nor stops it.
	Recorder *metrics.Recorder
	// Decider decides every request at its time in the past. Give it its
	// own limiter (in memory) so that history's buckets do not carry over
	// into the live ones.
	Decider Decider
	// Keys are the demo keys with their secrets.
	Keys []Key
	// Days of history end at End (default now) and start Days × 24 h
	// before it.
	Days int
	End  time.Time
	// Scale, Location and Seed are as for the generator.
	Scale    float64
	Location *time.Location
	Seed     uint64
	// Chunk is the records per RecordBatch and Flush; default 16384.
	Chunk int
}

// BackfillResult says what Backfill wrote.
type BackfillResult struct {
	From, To time.Time
	Records  int
	// ByDecision and ByStatus count the records, for tests and for the
	// command's summary.
	ByDecision map[string]int
	ByStatus   map[int]int
}

// Backfill writes Days of the personas' ordinary traffic (no abuse) into
// the Recorder's store, ending at End: every request decided by the
// Decider at its own time, answered by the same endpoint model as the
// live upstream (with one or two incidents a day), and recorded as the
// proxy would record it. It works through the days in one-minute steps,
// in time order, handing the Recorder a chunk and flushing it at a time,
// so a week of history takes seconds and bounded memory.
//
// It returns ctx.Err() when ctx ends first (what was flushed stays), and
// the Recorder's flush error (metrics.ErrFlush) if a commit fails.
func Backfill(ctx context.Context, opts BackfillOptions) (BackfillResult, error) {
	if opts.Recorder == nil || opts.Decider == nil {
		return BackfillResult{}, errors.New("demo: Backfill needs a Recorder and a Decider")
	}
	if opts.Days <= 0 {
		return BackfillResult{}, nil
	}
	if opts.End.IsZero() {
		opts.End = time.Now()
	}
	if opts.Scale <= 0 {
		opts.Scale = 1
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64()
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 16384
	}
	res := BackfillResult{
		From:       opts.End.Add(-time.Duration(opts.Days) * 24 * time.Hour),
		To:         opts.End,
		ByDecision: map[string]int{},
		ByStatus:   map[int]int{},
	}
	plan := newPlanner(opts.Seed, opts.Location, opts.Scale, opts.Keys)
	upstream := rand.New(rand.NewPCG(opts.Seed, 2))
	requestIDPrefix := "backfill-" + strconv.FormatUint(opts.Seed%1e6, 36) + "-"

	recs := make([]metrics.Record, 0, opts.Chunk)
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		if n := opts.Recorder.RecordBatch(recs); n != len(recs) {
			return fmt.Errorf("demo: the metrics buffer took %d of %d records; give the recorder a BufferSize of at least the chunk", n, len(recs))
		}
		recs = recs[:0]
		return opts.Recorder.Flush()
	}

	var calls []call
	const step = time.Minute
	for from := res.From; from.Before(res.To); from = from.Add(step) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		to := from.Add(step)
		if to.After(res.To) {
			to = res.To
		}
		incident := historyIncident(from, opts.Seed)
		calls = plan.ordinary(from, to, false, calls[:0])
		for i := range calls {
			c := &calls[i]
			rec := record(opts.Decider, upstream, c, incident)
			rec.RequestID = requestIDPrefix + strconv.Itoa(res.Records)
			res.Records++
			res.ByDecision[rec.Decision.String()]++
			res.ByStatus[rec.Status]++
			recs = append(recs, rec)
			if len(recs) == opts.Chunk {
				if err := flush(); err != nil {
					return res, err
				}
			}
		}
	}
	return res, flush()
}

// record decides c and fills in its metrics record the way the proxy
// does (api/gateway/gate.go newRecord, api/gateway/proxy.go).
func record(d Decider, rng *rand.Rand, c *call, incident bool) metrics.Record {
	ep := &endpoints[c.endpoint]
	dec := d.Decide(c.at, &enforce.Facts{HeaderKey: c.key, Method: ep.Method, Path: pathOnly(c.path), ClientIP: c.clientIP})
	rec := metrics.Record{
		Time:         c.at,
		Method:       ep.Method,
		Path:         c.path,
		ClientIP:     c.clientIP,
		UserAgent:    c.userAgent,
		Country:      c.country,
		RequestBytes: c.bodyBytes,
	}
	gateway.AttributeRecord(&rec, &dec)
	// apiwarden's own share of a request: a fraction of a millisecond.
	overhead := time.Duration(150+rng.IntN(450)) * time.Microsecond
	if dec.Allowed() {
		o := ep.decide(rng, incident)
		rec.Status = o.status
		rec.UpstreamLatency = o.latency
		rec.Latency = o.latency + overhead
		rec.ResponseBytes = o.bytes
	} else {
		rec.Status = httpapi.DecisionStatus(dec.Code)
		rec.Latency = overhead
		rec.ResponseBytes = 140 // the JSON error body
	}
	rec.ErrorCategory = metrics.CategorizeError(rec.Status, rec.Decision)
	return rec
}

// pathOnly drops the query string: the engine matches paths.
func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i]
		}
	}
	return p
}
