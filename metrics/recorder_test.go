package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// testClock is an injectable clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func newTestRecorder(t testing.TB, opts Options) (*Recorder, *Reader) {
	t.Helper()
	if opts.Store == nil {
		opts.Store = storetest.MustOpen(t)
	}
	rec, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Stop)
	return rec, NewReader(opts.Store)
}

// allRecords pages through every raw record oldest first.
func allRecords(t testing.TB, rd *Reader, q RecordQuery) []Record {
	t.Helper()
	var out []Record
	q.Limit = MaxRecordLimit
	for {
		page, err := rd.Records(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Records...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

func cellBytes(c *Cell) string { return string(c.appendBinary(nil)) }

// TestRollupsEqualRawSums is the property test: with every raw record
// kept, each stored cell equals the cell built from the raw records it
// covers, and histogram percentiles are within HistogramRelativeError of
// the exact ones.
func TestRollupsEqualRawSums(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			start := time.Date(2026, 6, 13, 18, 0, 0, 0, time.UTC)
			clock := &testClock{now: start.Add(5 * 24 * time.Hour)}
			r, rd := newTestRecorder(t, Options{Now: clock.Now, BufferSize: 1 << 16})
			rng := rand.New(rand.NewPCG(seed, 99))
			g := newTrafficGen(seed, start, 0.05) // ~4 days of sparse traffic
			n := 8000 + rng.IntN(4000)
			sent := make([]Record, n)
			for i := range sent {
				g.next(&sent[i])
				// Randomise order within a flush and across hours.
				sent[i].Time = sent[i].Time.Add(time.Duration(rng.IntN(7200)-3600) * time.Second)
				if rng.IntN(50) == 0 {
					sent[i].KeyID, sent[i].OwnerID, sent[i].Tier, sent[i].Route = "", "", "", ""
				}
			}
			for i := 0; i < n; {
				chunk := min(n-i, 1+rng.IntN(1500))
				for _, rec := range sent[i : i+chunk] {
					if !r.Record(&rec) {
						t.Fatal("record dropped")
					}
				}
				if err := r.Flush(); err != nil {
					t.Fatal(err)
				}
				i += chunk
			}

			raw := allRecords(t, rd, RecordQuery{Order: OldestFirst})
			if len(raw) != n {
				t.Fatalf("%d raw records, want %d", len(raw), n)
			}
			type cellID struct {
				iv    Interval
				dim   Dimension
				value string
				n     uint32
			}
			want := map[cellID]*Cell{}
			latencies := map[cellID][]float64{}
			for i := range raw {
				rec := &raw[i]
				values := map[Dimension]string{DimTotal: "", DimRoute: rec.Route, DimKey: rec.KeyID,
					DimOwner: rec.OwnerID, DimTier: rec.Tier, DimStatusClass: statusClassNames[rec.StatusClass()]}
				for dim, v := range values {
					if v == "" && dim != DimTotal {
						continue
					}
					for _, iv := range []Interval{Hourly, Daily} {
						id := cellID{iv, dim, v, iv.number(rec.Time)}
						if want[id] == nil {
							want[id] = &Cell{}
						}
						want[id].Add(rec)
						latencies[id] = append(latencies[id], latencyMillis(rec.Latency))
					}
				}
			}
			got := 0
			for _, iv := range []Interval{Hourly, Daily} {
				for _, dim := range Dimensions {
					err := rd.ScanCells(context.Background(), CellQuery{Interval: iv, Dimension: dim, AllValues: true},
						func(value string, s time.Time, c *Cell) error {
							got++
							id := cellID{iv, dim, value, iv.number(s)}
							w := want[id]
							if w == nil {
								return fmt.Errorf("unexpected cell %+v", id)
							}
							if cellBytes(c) != cellBytes(w) {
								return fmt.Errorf("cell %+v:\n got %+v\nwant %+v", id, *c, *w)
							}
							lat := latencies[id]
							slices.Sort(lat)
							for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 1} {
								exact := lat[max(int(math.Ceil(q*float64(len(lat))))-1, 0)]
								est := c.Latency.Quantile(q)
								if exact == 0 {
									if est != 0 {
										return fmt.Errorf("cell %+v q%v: %v, want 0", id, q, est)
									}
									continue
								}
								if rel := math.Abs(est-exact) / exact; rel > HistogramRelativeError+1e-9 {
									return fmt.Errorf("cell %+v q%v: %v vs exact %v: error %.4f", id, q, est, exact, rel)
								}
								d := c.LatencyQuantile(q)
								if rel := math.Abs(latencyMillis(d)-exact) / exact; rel > HistogramRelativeError+1e-6 {
									return fmt.Errorf("cell %+v LatencyQuantile(%v) = %v vs %v", id, q, d, exact)
								}
							}
							return nil
						})
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			if got != len(want) {
				t.Fatalf("%d cells stored, %d expected", got, len(want))
			}
			if st := r.Stats(); st.Accepted != uint64(n) || st.Flushed != uint64(n) || st.Dropped != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestSamplingThinsRawOnly(t *testing.T) {
	r, rd := newTestRecorder(t, Options{SampleRate: 0.25})
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 8000
	for i := range n {
		rec := Record{Time: start.Add(time.Duration(i) * time.Millisecond), RequestID: "aw1-" + strconv.Itoa(i),
			Method: "GET", Status: 200, Route: "/r"}
		r.Record(&rec)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	raw := allRecords(t, rd, RecordQuery{Order: OldestFirst})
	if len(raw) < n/4-200 || len(raw) > n/4+200 {
		t.Fatalf("kept %d raw records of %d at rate 0.25", len(raw), n)
	}
	for _, rec := range raw {
		if !r.sampled(&rec) {
			t.Fatalf("kept %s, which the sampler refuses", rec.RequestID)
		}
	}
	total, err := rd.Sum(context.Background(), CellQuery{Interval: Daily, Dimension: DimTotal})
	if err != nil {
		t.Fatal(err)
	}
	if total.Count != n {
		t.Fatalf("rollup counted %d, want %d", total.Count, n)
	}
	if st := r.Stats(); st.SampledOut != uint64(n-len(raw)) {
		t.Fatalf("SampledOut %d, want %d", st.SampledOut, n-len(raw))
	}
}

func TestBufferFullDropsAndCounts(t *testing.T) {
	r, _ := newTestRecorder(t, Options{BufferSize: 8})
	// Block the writer inside a commit, so nothing drains.
	entered, release := make(chan struct{}), make(chan struct{})
	r.commitHook = func(*store.Tx) error {
		close(entered)
		<-release
		return nil
	}
	rec := Record{Method: "GET", Status: 200, Time: time.Now()}
	for range 8 {
		r.Record(&rec)
	}
	flushed := make(chan error)
	go func() { flushed <- r.Flush() }()
	<-entered

	accepted := 0
	startAll := time.Now()
	for range 1000 {
		t0 := time.Now()
		if r.Record(&rec) {
			accepted++
		}
		if d := time.Since(t0); d > 100*time.Millisecond {
			t.Fatalf("Record blocked for %s", d)
		}
	}
	if accepted != 8 {
		t.Fatalf("accepted %d while the writer was busy, want 8 (the buffer size)", accepted)
	}
	st := r.Stats()
	if st.Dropped != 992 || st.Accepted != 16 || st.BufferLen != 8 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("1000 Record calls with a stuck writer took %s", time.Since(startAll))
	close(release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	r.commitHook = nil
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Flushed != 16 {
		t.Fatalf("flushed %d, want 16", st.Flushed)
	}
}

func TestStopDrainsEverything(t *testing.T) {
	r, rd := newTestRecorder(t, Options{FlushInterval: time.Hour, BufferSize: 1 << 15})
	done := make(chan error)
	go func() { done <- r.Run(context.Background()) }()
	var wg sync.WaitGroup
	const writers, each = 4, 2500
	base := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec := Record{Time: base.Add(time.Duration(i) * time.Millisecond), Method: "GET", Status: 200,
					RequestID: fmt.Sprintf("w%d-%d", w, i)}
				if !r.Record(&rec) {
					t.Error("dropped")
				}
			}
		})
	}
	wg.Wait()
	r.Stop()
	r.Stop() // safe twice
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(allRecords(t, rd, RecordQuery{})); got != writers*each {
		t.Fatalf("%d records after Stop, want %d", got, writers*each)
	}
	rec := Record{Method: "GET", Status: 200}
	if r.Record(&rec) {
		t.Fatal("Record after Stop accepted")
	}
	if st := r.Stats(); st.Dropped != 1 || st.Flushed != writers*each {
		t.Fatalf("stats %+v", st)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run after Stop: %v, want nil at once", err)
	}
}

func TestStopWithoutRunDrains(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	rec := Record{Time: time.Now(), Method: "GET", Status: 200}
	r.Record(&rec)
	r.Stop()
	if got := len(allRecords(t, rd, RecordQuery{})); got != 1 {
		t.Fatalf("%d records, want 1", got)
	}
}

func TestRunEndsWithContextAndDrains(t *testing.T) {
	r, rd := newTestRecorder(t, Options{FlushInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for {
		if r.life.Running() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := r.Run(ctx); !errors.Is(err, lifecycle.ErrAlreadyRunning) {
		t.Fatalf("second Run: %v", err)
	}
	rec := Record{Time: time.Now(), Method: "GET", Status: 200}
	r.Record(&rec)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.Stop() // after Run ended by itself: returns at once
	if got := len(allRecords(t, rd, RecordQuery{})); got != 1 {
		t.Fatalf("%d records, want 1", got)
	}
}

func TestFailedCommitIsRetried(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	var failures atomic.Int32
	failures.Store(2)
	r.commitHook = func(*store.Tx) error {
		if failures.Add(-1) >= 0 {
			return fmt.Errorf("write: %w", store.ErrDiskFull)
		}
		return nil
	}
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			rec := Record{Time: base.Add(time.Duration(i) * time.Second), Method: "POST", Status: 201,
				RequestID: "aw1-" + strconv.Itoa(i), KeyID: "k1"}
			r.Record(&rec)
		}
	}
	send(0, 100)
	err := r.Flush()
	if !errors.Is(err, ErrFlush) || !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("first flush: %v, want ErrFlush wrapping ErrDiskFull", err)
	}
	send(100, 150)
	if err := r.Flush(); !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("second flush: %v", err)
	}
	if st := r.Stats(); st.FlushFailures != 2 || st.Pending != 150 || st.Flushed != 0 {
		t.Fatalf("stats after failures %+v", st)
	}
	if got := allRecords(t, rd, RecordQuery{}); len(got) != 0 {
		t.Fatalf("%d records visible after failed commits", len(got))
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	got := allRecords(t, rd, RecordQuery{Order: OldestFirst})
	if len(got) != 150 {
		t.Fatalf("%d records after recovery, want 150", len(got))
	}
	for i, rec := range got {
		if rec.RequestID != "aw1-"+strconv.Itoa(i) {
			t.Fatalf("record %d is %s", i, rec.RequestID)
		}
	}
	sum, err := rd.Sum(context.Background(), CellQuery{Interval: Hourly, Dimension: DimKey, Value: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Count != 150 {
		t.Fatalf("rollup count %d, want 150 (each record exactly once)", sum.Count)
	}
	if st := r.Stats(); st.Pending != 0 || st.Flushed != 150 {
		t.Fatalf("stats after recovery %+v", st)
	}
}

func TestPendingIsBounded(t *testing.T) {
	r, _ := newTestRecorder(t, Options{BufferSize: 8, MaxPending: 10})
	r.commitHook = func(*store.Tx) error { return store.ErrDiskFull }
	rec := Record{Time: time.Now(), Method: "GET", Status: 200}
	for range 2 {
		for range 8 {
			r.Record(&rec)
		}
		_ = r.Flush()
	}
	if st := r.Stats(); st.Pending != 10 || st.Dropped != 6 {
		t.Fatalf("stats %+v, want 10 pending and 6 dropped", st)
	}
	r.commitHook = nil
}

func TestClosedStoreFailsWithoutPanic(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Time: time.Now(), Method: "GET", Status: 200}
	r.Record(&rec)
	st.Close()
	if err := r.Flush(); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("flush on a closed store: %v", err)
	}
	if s := r.Stats(); s.Pending != 1 || s.FlushFailures != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	st := storetest.MustOpen(t)
	for _, o := range []Options{
		{},
		{Store: st, SampleRate: 1.5},
		{Store: st, SampleRate: math.NaN()},
		{Store: st, BufferSize: -1},
		{Store: st, RawRetentionDays: -1},
		{Store: st, FlushInterval: -time.Second},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
}

func TestRecordSetsMissingTime(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 7, 4, 9, 0, 0, 0, time.UTC)}
	r, rd := newTestRecorder(t, Options{Now: clock.Now})
	rec := Record{Method: "GET", Status: 200}
	r.Record(&rec)
	if n := r.RecordBatch([]Record{{Method: "GET", Status: 204}}); n != 1 {
		t.Fatalf("RecordBatch took %d", n)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, got := range allRecords(t, rd, RecordQuery{}) {
		if !got.Time.Equal(clock.Now()) {
			t.Fatalf("time %s, want the clock's %s", got.Time, clock.Now())
		}
	}
}

func TestRecordStripsAPIKeyAndTruncates(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	long := string(make([]byte, 2000))
	rec := Record{Time: time.Now(), Method: "GET", Status: 200,
		Path: "/v1/x?a=1&api_key=wsk_secret&b=2", UserAgent: "é" + long}
	r.Record(&rec)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	got := allRecords(t, rd, RecordQuery{})[0]
	if got.Path != "/v1/x?a=1&b=2" {
		t.Fatalf("path %q", got.Path)
	}
	if len(got.UserAgent) != MaxUserAgentBytes {
		t.Fatalf("user agent of %d bytes", len(got.UserAgent))
	}
}

func TestDamagedCellDoesNotBlockFlushes(t *testing.T) {
	r, rd := newTestRecorder(t, Options{})
	at := time.Date(2026, 1, 5, 7, 30, 0, 0, time.UTC)
	err := r.st.Update(func(tx *store.Tx) error {
		return tx.Bucket(store.BucketRollupHour).Put(appendCellKey(nil, DimTotal, "", Hourly.number(at)), []byte{cellVersion, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Time: at, Method: "GET", Status: 200}
	r.Record(&rec)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	sum, err := rd.Sum(context.Background(), CellQuery{Interval: Hourly, Dimension: DimTotal})
	if err != nil || sum.Count != 1 {
		t.Fatalf("sum %d %v: the damaged cell should have been replaced", sum.Count, err)
	}
}

// The buffer starts small and grows as records wait, up to BufferSize
// and no further, both through Record and RecordBatch; once grown it
// takes records without allocating.
func TestBufferGrowsToBufferSize(t *testing.T) {
	const size = 3*initialBuffer + 5
	for _, batch := range []bool{false, true} {
		r, _ := newTestRecorder(t, Options{BufferSize: size, FlushInterval: time.Hour})
		if c := cap(r.buf) + cap(r.spare); c > 2*initialBuffer {
			t.Fatalf("a new Recorder holds room for %d records, want at most %d", c, 2*initialBuffer)
		}
		rec := Record{Method: "GET", Status: 200, Time: time.Now()}
		accepted := 0
		for range size + 100 {
			if batch {
				accepted += r.RecordBatch([]Record{rec})
			} else if r.Record(&rec) {
				accepted++
			}
		}
		if accepted != size {
			t.Fatalf("batch %v: %d records accepted, want BufferSize %d", batch, accepted, size)
		}
		if st := r.Stats(); st.Dropped != 100 {
			t.Fatalf("batch %v: %d dropped, want 100", batch, st.Dropped)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil { // both buffers have grown now
			t.Fatal(err)
		}
		for range size / 2 {
			r.Record(&rec)
		}
		if a := testing.AllocsPerRun(100, func() { r.Record(&rec) }); a != 0 {
			t.Fatalf("batch %v: Record allocates %v times once the buffer has grown", batch, a)
		}
	}
}
