package analytics_test

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/metrics"
)

// peerTraffic is five minutes of mixed requests before rtNow: routes,
// keys (each with one owner), statuses and latencies from a fixed seed.
func peerTraffic(n int) []metrics.Record {
	rng := rand.New(rand.NewPCG(15, 2))
	statuses := []int{200, 200, 200, 201, 304, 404, 429, 500, 503}
	recs := make([]metrics.Record, n)
	for i := range recs {
		key := fmt.Sprintf("k%d", rng.IntN(12))
		owner := "o" + key[1:2]
		ago := time.Duration(rng.Int64N(int64(5 * time.Minute)))
		latency := time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))
		recs[i] = rtRecord(ago, key, owner, fmt.Sprintf("/r%d", rng.IntN(7)), statuses[rng.IntN(len(statuses))], latency)
	}
	return recs
}

// newRing is a Realtime on the tests' clock.
func newRing(t *testing.T, now time.Time) *analytics.Realtime {
	t.Helper()
	rt, err := analytics.NewRealtime(analytics.RealtimeOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// sortedWindow is Window with its aggregates by subject value.
func sortedWindow(t *testing.T, rt *analytics.Realtime, kind alerting.SubjectKind, window time.Duration, now time.Time) []alerting.Aggregate {
	t.Helper()
	out, err := rt.Window(kind, window, now)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b alerting.Aggregate) int { return cmp.Compare(a.Subject.Value, b.Subject.Value) })
	return out
}

// A ring merged with its peers answers exactly what one ring fed every
// record answers: the snapshot with its series, percentiles, top routes
// and active keys, and Window for every subject kind.
func TestPeersMergeEqualsOneRing(t *testing.T) {
	traffic := peerTraffic(3000)
	// Read 20 s after the traffic, when every slot of it is over and its
	// tables published.
	readAt := rtNow.Add(20 * time.Second)
	for _, tc := range []struct {
		name      string
		instances int
		place     func(i int, rec *metrics.Record) int // which instance records rec
	}{
		{"one instance", 1, func(int, *metrics.Record) int { return 0 }},
		{"round robin over three", 3, func(i int, _ *metrics.Record) int { return i % 3 }},
		{"routes split over three", 3, func(_ int, r *metrics.Record) int { return int(r.Route[2]-'0') % 3 }},
		{"keys split over two", 2, func(_ int, r *metrics.Record) int { return len(r.KeyID) % 2 }},
		{"all on a peer, none local", 2, func(int, *metrics.Record) int { return 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			single := newRing(t, readAt)
			rings := make([]*analytics.Realtime, tc.instances)
			for i := range rings {
				rings[i] = newRing(t, readAt)
			}
			for i := range traffic {
				if !single.Record(&traffic[i]) || !rings[tc.place(i, &traffic[i])].Record(&traffic[i]) {
					t.Fatalf("record %d refused", i)
				}
			}
			merged := rings[0]
			for i, peer := range rings[1:] {
				parts, _ := peer.Parts(readAt, time.Time{})
				for _, p := range parts {
					if err := merged.Peers().Apply(fmt.Sprintf("peer-%d", i), p); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got, want := merged.Snapshot(readAt, true), single.Snapshot(readAt, true); !reflect.DeepEqual(got, want) {
				t.Errorf("merged snapshot\n%+v\nwant\n%+v", got.Last5Minutes, want.Last5Minutes)
			}
			for _, kind := range []alerting.SubjectKind{alerting.SubjectGlobal, alerting.SubjectRoute, alerting.SubjectKey, alerting.SubjectOwner} {
				for _, window := range []time.Duration{time.Minute, 5 * time.Minute} {
					got, want := sortedWindow(t, merged, kind, window, readAt), sortedWindow(t, single, kind, window, readAt)
					if !reflect.DeepEqual(got, want) {
						t.Errorf("Window(%s, %s)\n%+v\nwant\n%+v", kind, window, got, want)
					}
				}
			}
		})
	}
}

// A slot's seconds and tables are published while it runs, and until a
// second after it is over; from skips what was published in full already.
func TestPartsWhileSlotRuns(t *testing.T) {
	slotStart := time.Unix(rtNow.Unix()/10*10, 0).UTC()
	rt := newRing(t, slotStart.Add(30*time.Second))
	rec := rtRecord(0, "k1", "o1", "/a", 500, 3*time.Millisecond)
	rec.Time = slotStart.Add(4 * time.Second)
	rt.Record(&rec)

	kinds := func(parts []analytics.RealtimePart) (out []string) {
		for _, p := range parts {
			out = append(out, fmt.Sprintf("%d@%s", p.Kind, p.Start.Sub(slotStart)))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		now      time.Duration // after slotStart
		from     time.Time
		want     []string
		wantNext time.Duration
	}{
		{"slot in progress", 5500 * time.Millisecond, time.Time{}, []string{"1@0s", "2@0s"}, 0},
		{"slot over, its last second not yet a second old", 10500 * time.Millisecond, slotStart, []string{"1@0s", "2@0s"}, 0},
		{"slot over a second ago", 11500 * time.Millisecond, slotStart, []string{"1@0s", "2@0s"}, 10 * time.Second},
		{"published in full already", 12500 * time.Millisecond, slotStart.Add(10 * time.Second), nil, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts, next := rt.Parts(slotStart.Add(tc.now), tc.from)
			if got := kinds(parts); !slices.Equal(got, tc.want) {
				t.Errorf("parts %v, want %v", got, tc.want)
			}
			if got := next.Sub(slotStart); got != tc.wantNext {
				t.Errorf("next %s, want %s", got, tc.wantNext)
			}
		})
	}
}

// A peer's seconds count at once; its data leaves the window as a local
// ring's would, and Forget then drops the peer.
func TestPeersAgeOut(t *testing.T) {
	local, peer := newRing(t, rtNow), newRing(t, rtNow)
	for _, ago := range []time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second} {
		rec := rtRecord(ago, "k1", "o1", "/a", 500, time.Millisecond)
		peer.Record(&rec)
	}
	parts, _ := peer.Parts(rtNow, time.Time{})
	for _, p := range parts {
		if err := local.Peers().Apply("peer", p); err != nil {
			t.Fatal(err)
		}
	}
	if got := local.Snapshot(rtNow, false).LastMinute.Requests; got != 3 {
		t.Fatalf("last minute with the peer: %d requests, want 3", got)
	}
	later := rtNow.Add(6 * time.Minute)
	if got := local.Snapshot(later, false).Last5Minutes.Requests; got != 0 {
		t.Errorf("six minutes later: %d requests, want 0", got)
	}
	local.Peers().Forget(rtNow.Add(-time.Minute))
	if got := local.Peers().Len(); got != 1 {
		t.Errorf("Forget before the peer's last slot dropped it: %d peers", got)
	}
	local.Peers().Forget(later)
	if got := local.Peers().Len(); got != 0 {
		t.Errorf("after Forget: %d peers, want 0", got)
	}
}

// Parts that do not decode are refused whole, with ErrBadPart.
func TestPeersApplyRefusesBadParts(t *testing.T) {
	src := newRing(t, rtNow.Add(20*time.Second))
	for _, rec := range peerTraffic(200) {
		src.Record(&rec)
	}
	parts, _ := src.Parts(rtNow.Add(20*time.Second), time.Time{})
	var seconds, tables analytics.RealtimePart
	for _, p := range parts {
		if p.Kind == analytics.PartSeconds {
			seconds = p
		} else {
			tables = p
		}
	}
	with := func(p analytics.RealtimePart, edit func(*analytics.RealtimePart)) analytics.RealtimePart {
		p.Payload = slices.Clone(p.Payload)
		edit(&p)
		return p
	}
	for _, tc := range []struct {
		name string
		part analytics.RealtimePart
	}{
		{"unknown kind", with(seconds, func(p *analytics.RealtimePart) { p.Kind = 9 })},
		{"start off the grid", with(seconds, func(p *analytics.RealtimePart) { p.Start = p.Start.Add(time.Second) })},
		{"other version", with(seconds, func(p *analytics.RealtimePart) { p.Payload[0] = 2 })},
		{"empty", with(seconds, func(p *analytics.RealtimePart) { p.Payload = nil })},
		{"seconds truncated", with(seconds, func(p *analytics.RealtimePart) { p.Payload = p.Payload[:len(p.Payload)-1] })},
		{"seconds with trailing bytes", with(seconds, func(p *analytics.RealtimePart) { p.Payload = append(p.Payload, 0) })},
		{"tables truncated", with(tables, func(p *analytics.RealtimePart) { p.Payload = p.Payload[:len(p.Payload)/2] })},
		{"too many routes", with(tables, func(p *analytics.RealtimePart) { p.Payload = []byte{1, 0xff, 0xff, 0x03} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := newRing(t, rtNow)
			// With a good part of the same slot: Apply takes both or neither.
			good := seconds
			if tc.part.Kind == analytics.PartSeconds {
				good = tables
			}
			if err := dst.Peers().Apply("peer", good, tc.part); !errors.Is(err, analytics.ErrBadPart) {
				t.Fatalf("Apply: %v, want ErrBadPart", err)
			}
			if w := dst.Snapshot(rtNow.Add(20*time.Second), false).Last5Minutes; w.Requests != 0 || len(w.TopRoutes) != 0 {
				t.Errorf("refused parts counted %d requests, top routes %+v", w.Requests, w.TopRoutes)
			}
		})
	}
}

// Applying peers' parts, forgetting peers, recording and reading at once
// (run with -race): every read sees whole parts.
func TestPeersConcurrentApplyAndRead(t *testing.T) {
	readAt := rtNow.Add(20 * time.Second)
	src := newRing(t, readAt)
	traffic := peerTraffic(500)
	for i := range traffic {
		src.Record(&traffic[i])
	}
	parts, _ := src.Parts(readAt, time.Time{})
	dst := newRing(t, readAt)
	done := make(chan struct{})
	errs := make(chan error, 3)
	go func() { // a peer's parts, again and again, under two names
		defer close(done)
		for round := range 20 {
			for _, p := range parts {
				if err := dst.Peers().Apply(fmt.Sprintf("peer-%d", round%2), p); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	go func() { // local traffic meanwhile
		for i := range traffic {
			dst.Record(&traffic[i])
		}
		errs <- nil
	}()
	go func() {
		for range 50 {
			dst.Peers().Forget(rtNow.Add(-time.Hour))
		}
		errs <- nil
	}()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		if n := dst.Snapshot(readAt, false).Last5Minutes.Requests; n > 3*uint64(len(traffic)) {
			t.Fatalf("read %d requests; at most %d exist", n, 3*len(traffic))
		}
		if _, err := dst.Window(alerting.SubjectKey, 5*time.Minute, readAt); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := dst.Snapshot(readAt, false).Last5Minutes, src.Snapshot(readAt, false).Last5Minutes; got.Requests != 3*want.Requests {
		t.Errorf("after it all: %d requests, want 3 × %d (local and two peers)", got.Requests, want.Requests)
	}
}
