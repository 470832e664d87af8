package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
	"github.com/apiwarden/apiwarden/store"
)

// Defaults for Options fields left at zero. The retention defaults are
// the configuration's (config.example.toml, [metrics]); Options itself
// reads 0 days as "keep forever", so a config layer passes these through
// explicitly.
const (
	DefaultFlushInterval       = time.Second
	DefaultBufferSize          = 32768
	DefaultRawRetentionDays    = 90
	DefaultHourlyRetentionDays = 400
	DefaultRetentionInterval   = time.Hour

	maxBufferSize = 1 << 22
	drainAttempts = 3

	// initialBuffer is the records the buffer and its spare hold at
	// first: they grow from it up to BufferSize only when that many
	// records wait between two flushes, so an idle or lightly loaded
	// process does not hold two buffers of the worst case (2 × 65,536
	// records of 240 bytes, 30 MiB, with the default configuration).
	initialBuffer = 1024
)

// Options configure a Recorder. Store is required; every other zero value
// picks the default.
type Options struct {
	Store *store.Store
	// FlushInterval is how often buffered records are committed; the
	// writer also flushes early when the buffer is half full. Default 1s.
	FlushInterval time.Duration
	// SampleRate in (0, 1] is the share of raw records kept, chosen
	// deterministically by hashing the request id. Rollups always count
	// every record. 0 means 1.
	SampleRate float64
	// BufferSize bounds the records waiting for the writer; when it is
	// full, Record drops and counts. Default DefaultBufferSize.
	BufferSize int
	// MaxPending bounds the records kept in memory across failed commits
	// (e.g. disk full); beyond it the oldest are dropped and counted.
	// Default 4 × BufferSize.
	MaxPending int
	// Retention in UTC days; 0 keeps forever. Data of day D is deleted
	// once the current UTC day is later than D + N.
	RawRetentionDays    int
	HourlyRetentionDays int
	DailyRetentionDays  int
	// RetentionInterval is how often Run applies retention. Default 1h.
	RetentionInterval time.Duration
	// Now is the clock for retention and for records without a Time;
	// nil means time.Now.
	Now func() time.Time
	// Logger receives flush failures and retention notices; nil discards.
	Logger *slog.Logger
	// MarkChangedCells makes each flush also mark, in its transaction,
	// the rollup cells it changed, for a shipper to copy (cluster mode;
	// dirty.go).
	MarkChangedCells bool
	// Minimise leaves personal data out of what is stored ([metrics]
	// client_ip and user_agent); the zero value stores everything.
	Minimise Minimisation
}

// Recorder takes request records on the hot path and writes them in the
// background: raw record blocks and rollup cells, committed together in
// one bbolt transaction per flush, so raw records and rollups agree after
// any crash. A crash loses at most the records of one flush interval.
//
// Record never blocks: it copies the record into a bounded buffer that the
// writer goroutine (Run) swaps out at every flush; when the buffer is full
// the record is dropped and counted in Stats. Stop drains the buffer and
// commits before it returns. A failed commit keeps its records in memory
// (up to MaxPending) and retries them with the next flush.
//
// A Recorder is safe for concurrent use.
type Recorder struct {
	st                *store.Store
	log               *slog.Logger
	now               func() time.Time
	flushInterval     time.Duration
	retentionInterval time.Duration
	sampleAll         bool
	sampleBelow       uint64 // a raw record is kept when its hash is below this
	maxPending        int
	rawDays           int
	hourDays          int
	dayDays           int
	markCells         bool
	minimise          Minimisation

	// Hot path, guarded by mu.
	mu       sync.Mutex
	buf      []Record // grows up to limit, and keeps what it grew to
	limit    int      // Options.BufferSize
	closed   bool
	accepted uint64
	dropped  uint64
	kickAt   int
	kick     chan struct{}

	// Writer state, guarded by flushMu.
	flushMu    sync.Mutex
	spare      []Record
	pending    []Record
	order      []*Record
	blockRecs  []*Record
	arena      []byte
	enc        *blockEncoder
	dict       *dictWriter
	agg        *rollupAgg
	rollups    *rollupWriter
	failStreak int
	commitHook func(*store.Tx) error // tests inject commit failures here

	flushed       atomic.Uint64
	flushFailures atomic.Uint64
	sampledOut    atomic.Uint64
	lastFlush     atomic.Int64 // nanoseconds
	pendingLen    atomic.Int64

	life lifecycle.State
}

// New checks opts and returns a Recorder; call Run to start writing. It
// returns ErrInvalidOptions naming the first invalid field.
func New(opts Options) (*Recorder, error) {
	switch {
	case opts.Store == nil:
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidOptions)
	case opts.FlushInterval < 0:
		return nil, fmt.Errorf("%w: FlushInterval must be ≥ 0, got %s", ErrInvalidOptions, opts.FlushInterval)
	case !(opts.SampleRate >= 0 && opts.SampleRate <= 1):
		return nil, fmt.Errorf("%w: SampleRate must be in [0, 1], got %v", ErrInvalidOptions, opts.SampleRate)
	case opts.BufferSize < 0 || opts.BufferSize > maxBufferSize:
		return nil, fmt.Errorf("%w: BufferSize must be in [0, %d], got %d", ErrInvalidOptions, maxBufferSize, opts.BufferSize)
	case opts.MaxPending < 0:
		return nil, fmt.Errorf("%w: MaxPending must be ≥ 0, got %d", ErrInvalidOptions, opts.MaxPending)
	case opts.RawRetentionDays < 0 || opts.HourlyRetentionDays < 0 || opts.DailyRetentionDays < 0:
		return nil, fmt.Errorf("%w: retention days must be ≥ 0 (0 keeps forever)", ErrInvalidOptions)
	case opts.RetentionInterval < 0:
		return nil, fmt.Errorf("%w: RetentionInterval must be ≥ 0, got %s", ErrInvalidOptions, opts.RetentionInterval)
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.SampleRate == 0 {
		opts.SampleRate = 1
	}
	if opts.BufferSize == 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = 4 * opts.BufferSize
	}
	if opts.RetentionInterval == 0 {
		opts.RetentionInterval = DefaultRetentionInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		st:                opts.Store,
		log:               opts.Logger,
		now:               opts.Now,
		flushInterval:     opts.FlushInterval,
		retentionInterval: opts.RetentionInterval,
		sampleAll:         opts.SampleRate >= 1,
		sampleBelow:       uint64(opts.SampleRate * math.Exp2(64)),
		maxPending:        opts.MaxPending,
		rawDays:           opts.RawRetentionDays,
		hourDays:          opts.HourlyRetentionDays,
		dayDays:           opts.DailyRetentionDays,
		markCells:         opts.MarkChangedCells,
		minimise:          opts.Minimise,
		buf:               make([]Record, 0, min(opts.BufferSize, initialBuffer)),
		spare:             make([]Record, 0, min(opts.BufferSize, initialBuffer)),
		limit:             opts.BufferSize,
		kickAt:            max(opts.BufferSize/2, 1),
		kick:              make(chan struct{}, 1),
		enc:               newBlockEncoder(),
		dict:              newDictWriter(),
		agg:               newRollupAgg(),
		rollups:           newRollupWriter(),
	}
	return r, nil
}

// Record queues a copy of rec for the writer and returns at once; it
// reports false when the record was dropped because the buffer is full or
// the Recorder is stopped. A zero rec.Time is set to the current time, and
// the copy is minimised as Options.Minimise says (rec is not changed). It
// does not allocate once the buffer has grown to what the load needs
// (initialBuffer, then doubling up to BufferSize), and keeps no reference
// to rec.
func (r *Recorder) Record(rec *Record) bool {
	r.mu.Lock()
	if r.closed || len(r.buf) >= r.limit {
		r.dropped++
		r.mu.Unlock()
		return false
	}
	r.buf = append(r.buf, *rec)
	n := len(r.buf)
	if rec.Time.IsZero() {
		r.buf[n-1].Time = r.now()
	}
	r.minimise.apply(&r.buf[n-1])
	r.accepted++
	r.mu.Unlock()
	if n == r.kickAt {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// RecordBatch queues copies of as many of recs as fit and returns how
// many it took, in order; the rest are dropped and counted. It is what the
// events endpoint uses, so it can tell the client what was refused.
func (r *Recorder) RecordBatch(recs []Record) int {
	r.mu.Lock()
	n := 0
	if !r.closed {
		n = min(len(recs), r.limit-len(r.buf))
	}
	before := len(r.buf)
	r.buf = append(r.buf, recs[:n]...)
	var now time.Time
	for i := before; i < len(r.buf); i++ {
		r.minimise.apply(&r.buf[i])
		if r.buf[i].Time.IsZero() {
			if now.IsZero() {
				now = r.now()
			}
			r.buf[i].Time = now
		}
	}
	r.accepted += uint64(n)
	r.dropped += uint64(len(recs) - n)
	crossed := before < r.kickAt && len(r.buf) >= r.kickAt
	r.mu.Unlock()
	if crossed {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return n
}

// Stats is a reading of the Recorder's counters, for monitoring.
type Stats struct {
	Accepted          uint64        // records taken by Record and RecordBatch
	Dropped           uint64        // records refused (buffer full, stopped) or discarded after failed commits
	Flushed           uint64        // records committed
	SampledOut        uint64        // committed records kept in rollups only (SampleRate, raw retention)
	FlushFailures     uint64        // commits that failed
	LastFlushDuration time.Duration // wall time of the last flush that committed
	BufferLen         int           // records waiting in the buffer
	Pending           int           // records kept from failed commits, retried at the next flush
}

// Stats returns the current counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	s := Stats{Accepted: r.accepted, Dropped: r.dropped, BufferLen: len(r.buf)}
	r.mu.Unlock()
	s.Flushed = r.flushed.Load()
	s.SampledOut = r.sampledOut.Load()
	s.FlushFailures = r.flushFailures.Load()
	s.LastFlushDuration = time.Duration(r.lastFlush.Load())
	s.Pending = int(r.pendingLen.Load())
	return s
}

// Run writes in the background until ctx ends or Stop is called: a flush
// every FlushInterval (sooner when the buffer is half full) and retention
// every RetentionInterval. Before returning it drains the buffer and
// commits, and it returns the error of that last commit, if any. It returns
// an error wrapping lifecycle.ErrAlreadyRunning at once while another Run
// is active, and nil at once after Stop (which has drained already) or
// after an earlier Run has returned.
func (r *Recorder) Run(ctx context.Context) error {
	return r.life.Run("metrics: recorder", func(stop <-chan struct{}) error {
		retentionCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.retentionLoop(retentionCtx) })
		r.flushUntil(ctx, stop)
		cancel()
		wg.Wait()
		return r.drain()
	})
}

// flushUntil flushes every flushInterval, and when the buffer is half
// full, until ctx ends or stop is closed.
func (r *Recorder) flushUntil(ctx context.Context, stop <-chan struct{}) {
	ticker := time.NewTicker(r.flushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-ticker.C:
			_ = r.Flush()
		case <-r.kick:
			_ = r.Flush()
		}
	}
}

// Stop ends Run, or drains directly if Run was never started, and returns
// once every buffered record is committed (or, with the store failing, has
// been tried drainAttempts times and logged as lost). Records arriving
// after Stop are dropped and counted. Stop is safe to call more than once
// and from several goroutines; each call returns after the drain.
func (r *Recorder) Stop() {
	r.life.Stop(func() { _ = r.drain() })
}

// drain closes the buffer and commits what is left.
func (r *Recorder) drain() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	var err error
	for attempt := range drainAttempts {
		if err = r.Flush(); err == nil {
			return nil
		}
		if attempt < drainAttempts-1 {
			time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
		}
	}
	r.flushMu.Lock()
	lost := len(r.pending)
	r.flushMu.Unlock()
	r.log.Error("metrics: records lost at shutdown", "records", lost, "err", err)
	return err
}

// Flush commits everything buffered now in one transaction; Run calls it
// on its schedule, and it is safe to call at the same time. On failure it
// returns ErrFlush wrapping the store's error (store.ErrDiskFull,
// store.ErrClosed, …) and keeps the records for the next flush.
func (r *Recorder) Flush() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()

	r.mu.Lock()
	batch := r.buf
	r.buf = r.spare[:0]
	r.mu.Unlock()

	work := batch
	if len(r.pending) > 0 {
		r.pending = append(r.pending, batch...)
		work = r.pending
	}
	if len(work) == 0 {
		r.spare = batch
		return nil
	}
	start := time.Now()
	err := r.commit(work)
	if err != nil {
		r.flushFailures.Add(1)
		if len(r.pending) == 0 {
			r.pending = append(r.pending, batch...)
		}
		if over := len(r.pending) - r.maxPending; over > 0 {
			n := copy(r.pending, r.pending[over:])
			clear(r.pending[n:])
			r.pending = r.pending[:n]
			r.mu.Lock()
			r.dropped += uint64(over)
			r.mu.Unlock()
		}
		r.pendingLen.Store(int64(len(r.pending)))
		clear(batch)
		r.spare = batch[:0]
		r.failStreak++
		if r.failStreak&(r.failStreak-1) == 0 { // 1st, 2nd, 4th, 8th … failure in a row
			r.log.Warn("metrics: flush failed; records kept for the next flush",
				"pending", len(r.pending), "failures_in_a_row", r.failStreak, "err", err)
		}
		return fmt.Errorf("%w: %d records kept for the next flush: %w", ErrFlush, len(r.pending), err)
	}
	if r.failStreak > 0 {
		r.log.Info("metrics: flush recovered", "after_failures", r.failStreak)
		r.failStreak = 0
	}
	r.flushed.Add(uint64(len(work)))
	r.lastFlush.Store(int64(time.Since(start)))
	clear(batch)
	r.spare = batch[:0]
	if len(r.pending) > 0 {
		clear(r.pending)
		if cap(r.pending) > 2*cap(r.spare) {
			r.pending = nil // a long outage grew it; give the memory back
		} else {
			r.pending = r.pending[:0]
		}
		r.pendingLen.Store(0)
	}
	return nil
}

// cutoffs are the first interval numbers retention keeps (0 keeps all).
type cutoffs struct {
	rawDay, hour, day uint32
}

func (r *Recorder) cutoffs(now time.Time) cutoffs {
	today := int64(Daily.number(now))
	first := func(days int) uint32 {
		if days <= 0 {
			return 0
		}
		return uint32(max(today-int64(days), 0))
	}
	return cutoffs{rawDay: first(r.rawDays), hour: first(r.hourDays) * 24, day: first(r.dayDays)}
}

// commit writes work (sanitized in place) in one transaction.
func (r *Recorder) commit(work []Record) error {
	cut := r.cutoffs(r.now())
	r.order = r.order[:0]
	for i := range work {
		work[i].sanitize()
		r.order = append(r.order, &work[i])
	}
	slices.SortStableFunc(r.order, func(a, b *Record) int { return a.Time.Compare(b.Time) })

	r.agg.reset()
	for _, rec := range r.order {
		r.agg.add(rec)
	}
	r.rollups.prepare(r.agg, cut.hour, cut.day)

	var sampledOut uint64
	err := r.st.Update(func(tx *store.Tx) error {
		var err error
		if sampledOut, err = r.writeRaw(tx, cut.rawDay); err != nil {
			return err
		}
		if err := r.rollups.write(tx); err != nil {
			return err
		}
		if r.markCells {
			if err := r.rollups.markDirty(tx); err != nil {
				return err
			}
		}
		if r.commitHook != nil {
			return r.commitHook(tx)
		}
		return nil
	})
	clear(r.order)
	clear(r.blockRecs)
	if err != nil {
		r.dict.rollback()
		return err
	}
	r.dict.commit()
	r.sampledOut.Add(sampledOut)
	if n := r.rollups.replaced; n > 0 {
		r.log.Error("metrics: replaced rollup cells that could not be decoded", "cells", n)
	}
	return nil
}

// writeRaw encodes the sampled records of r.order into blocks, one run per
// UTC day (split at maxBlockRecords), each under the next value of the raw
// bucket's sequence. It returns how many records it left out.
func (r *Recorder) writeRaw(tx *store.Tx, minDay uint32) (skipped uint64, err error) {
	raw, err := tx.MustBucket(store.BucketRaw)
	if err != nil {
		return 0, err
	}
	dict, err := tx.MustBucket(store.BucketDict)
	if err != nil {
		return 0, err
	}
	intern := func(s string) (uint64, error) { return r.dict.intern(dict, s) }
	r.arena = r.arena[:0]
	recs := r.blockRecs[:0]
	var day uint32
	put := func() error {
		dayBucket, err := raw.CreateBucketIfNotExists(dayName(day))
		if err != nil {
			return err
		}
		// Block keys only ever grow within a day, so full pages are best.
		dayBucket.SetFillPercent(1)
		seq, err := raw.NextSequence()
		if err != nil {
			return err
		}
		start := len(r.arena)
		if r.arena, err = r.enc.encode(r.arena, recs, intern); err != nil {
			return err
		}
		value := r.arena[start:len(r.arena):len(r.arena)]
		if err := dayBucket.Put(blockKey(seq), value); err != nil {
			return fmt.Errorf("metrics: write raw block: %w", err)
		}
		recs = recs[:0]
		return nil
	}
	for _, rec := range r.order {
		d := Daily.number(rec.Time)
		if d < minDay || !r.sampled(rec) {
			skipped++
			continue
		}
		if len(recs) > 0 && (d != day || len(recs) == maxBlockRecords) {
			if err := put(); err != nil {
				return 0, err
			}
		}
		day = d
		recs = append(recs, rec)
	}
	if len(recs) > 0 {
		if err := put(); err != nil {
			return 0, err
		}
	}
	r.blockRecs = recs
	return skipped, nil
}

// sampled decides whether a raw record is kept: a hash of its request id
// (of time and path when it has none) below the sample threshold, so every
// instance and every retry decides the same for the same request.
func (r *Recorder) sampled(rec *Record) bool {
	if r.sampleAll {
		return true
	}
	var h uint64
	if rec.RequestID != "" {
		h = hashString(rec.RequestID)
	} else {
		h = hashString(rec.Path) ^ uint64(rec.Time.UnixMicro())
	}
	return mix64(h) < r.sampleBelow
}

// hashString is FNV-1a, inlined so it does not allocate.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finaliser: FNV leaves the high bits of ids that
// differ only in their last digit too alike for a threshold test.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// dayName is the name of a day's bucket inside store.BucketRaw:
// "2006-01-02", which sorts by date.
func dayName(day uint32) []byte {
	return Daily.start(day).AppendFormat(make([]byte, 0, 10), time.DateOnly)
}

// parseDayName is the inverse of dayName.
func parseDayName(name []byte) (uint32, bool) {
	t, err := time.Parse(time.DateOnly, string(name))
	if err != nil || t.Unix() < 0 {
		return 0, false
	}
	return Daily.number(t), true
}

// blockKey is the key of a block inside its day bucket: the raw bucket's
// sequence at the time of writing, 8 bytes big-endian, so keys grow with
// every block written, whatever day it belongs to.
func blockKey(seq uint64) []byte {
	return []byte{byte(seq >> 56), byte(seq >> 48), byte(seq >> 40), byte(seq >> 32),
		byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
}
