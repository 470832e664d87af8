package cluster_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/decision"
	"github.com/apiwarden/apiwarden/metrics"
)

// The fixed data set both analytics readers are compared over: it ends at
// sourceNow, a Wednesday afternoon, and starts four days earlier, so the
// summary's hour, day, week and month all hold traffic and so do their
// previous periods (the week and the month partly).
var (
	sourceNow   = time.Date(2026, 11, 4, 15, 30, 0, 0, time.UTC)
	sourceStart = time.Date(2026, 10, 31, 20, 0, 0, 0, time.UTC)
)

// sourceRecordCount is how many records the data set holds.
const sourceRecordCount = 4000

// sourceFlushes splits the data set into the flushes that record it: in
// time order, sourceFlushSize records a flush, except that every 17th
// record arrives ten flushes late (an ingested event, a flush retried
// after a failure), so blocks of one day are out of time order with one
// another and some land in a day bucket after the next day's.
const sourceFlushSize = 150

var (
	sourceKeys   = []string{"key_alpha", "key_beta", "key_gamma", "key_delta", "key_eps", "key_zeta", "key_eta", "key_rare"}
	sourceRoutes = []string{"/api/forms/*", "/api/users/:id", "/health", "/api/orders", "/api/items/*"}
	sourceStatus = []int{200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502, 503}
	methods      = []string{"GET", "GET", "POST", "PUT", "DELETE"}
)

// sourceRecords generates the data set, deterministically, in time order.
func sourceRecords() []metrics.Record {
	rng := rand.New(rand.NewPCG(15, 2026))
	span := sourceNow.Sub(sourceStart)
	recs := make([]metrics.Record, sourceRecordCount)
	for i := range recs {
		k := rng.IntN(len(sourceKeys) - 1)
		if i%500 == 7 {
			k = len(sourceKeys) - 1 // the rare key: a handful of records
		}
		status := sourceStatus[rng.IntN(len(sourceStatus))]
		d := decision.Valid
		switch status {
		case 401:
			d = decision.NotFound
		case 403:
			d = decision.InsufficientScope
		case 429:
			d = decision.RateLimited
		}
		rec := metrics.Record{
			// Nanoseconds on purpose: both stores keep microseconds.
			Time:            sourceStart.Add(time.Duration(rng.Int64N(int64(span)))),
			RequestID:       fmt.Sprintf("req-%05d", i),
			Method:          methods[rng.IntN(len(methods))],
			Route:           sourceRoutes[rng.IntN(len(sourceRoutes))],
			Status:          status,
			Latency:         time.Duration(rng.Int64N(int64(800 * time.Millisecond))),
			UpstreamLatency: time.Duration(rng.Int64N(int64(500 * time.Millisecond))),
			RequestBytes:    rng.Int64N(4096),
			ResponseBytes:   rng.Int64N(65536),
			KeyID:           sourceKeys[k],
			OwnerID:         fmt.Sprintf("org_%d", k%3),
			Tier:            []string{"free", "pro"}[k%2],
			ClientIP:        netip.AddrFrom4([4]byte{10, byte(k), byte(i >> 8), byte(i)}),
			Country:         []string{"DE", "US", "FR", ""}[rng.IntN(4)],
			UserAgent:       "client/" + fmt.Sprint(rng.IntN(3)),
			CacheStatus:     metrics.CacheStatus(rng.IntN(5)),
			Decision:        d,
		}
		rec.Path = fmt.Sprintf("/p/%d?x=%d", i, rng.IntN(9))
		rec.ErrorCategory = metrics.CategorizeError(status, d)
		switch {
		case i%11 == 0: // public routes: no key, owner or tier
			rec.KeyID, rec.OwnerID, rec.Tier, rec.Decision = "", "", "", decision.None
		case i%29 == 0:
			rec.ClientIP = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i))
		case i%31 == 0:
			rec.ClientIP = netip.Addr{}
			rec.Latency = 0
		}
		recs[i] = rec
	}
	slices.SortStableFunc(recs, func(a, b metrics.Record) int { return a.Time.Compare(b.Time) })
	return recs
}

// recordSourceData records into rec, flush by flush, the records of the
// data set whose index keep accepts (nil keeps all).
func recordSourceData(t testing.TB, rec *metrics.Recorder, keep func(i int) bool) {
	t.Helper()
	recs := sourceRecords()
	flushes := make([][]metrics.Record, (len(recs)+sourceFlushSize-1)/sourceFlushSize)
	for i := range recs {
		if keep != nil && !keep(i) {
			continue
		}
		f := i / sourceFlushSize
		if i%17 == 0 {
			f = min(f+10, len(flushes)-1)
		}
		flushes[f] = append(flushes[f], recs[i])
	}
	for _, batch := range flushes {
		for i := range batch {
			if !rec.Record(&batch[i]) {
				t.Fatal("record dropped: the buffer is smaller than a flush")
			}
		}
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}
