package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// PeerPart is one row of apiwarden_realtime: half of one 10-second slot
// of an instance's realtime ring, whose payload this package stores and
// returns without reading, and the instance that published it.
type PeerPart struct {
	Instance string
	analytics.RealtimePart
	PublishedAt time.Time // PostgreSQL's clock at the write
}

// PublishRealtime stores parts as instance's, replacing the rows of the
// same kind and slot, and deletes instance's rows of slots that start
// before keepFrom, in one statement; parts of such slots are not stored.
// Errors wrap keys.ErrUnavailable when PostgreSQL cannot be reached.
func (c *Cluster) PublishRealtime(ctx context.Context, instance string, parts []analytics.RealtimePart, keepFrom time.Time) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	kinds := make([]int16, 0, len(parts))
	starts := make([]time.Time, 0, len(parts))
	payloads := make([][]byte, 0, len(parts))
	for _, p := range parts {
		// One statement must not both delete and rewrite a row.
		if !p.Start.Before(keepFrom) {
			kinds, starts, payloads = append(kinds, int16(p.Kind)), append(starts, p.Start), append(payloads, p.Payload)
		}
	}
	_, err := c.pool.Exec(ctx, `WITH expired AS (
			DELETE FROM apiwarden_realtime WHERE instance_id = $1 AND start < $2)
		INSERT INTO apiwarden_realtime (instance_id, kind, start, published_at, payload)
		SELECT $1, kind, start, now(), payload FROM unnest($3::smallint[], $4::timestamptz[], $5::bytea[]) AS p(kind, start, payload)
		ON CONFLICT (instance_id, kind, start) DO UPDATE SET published_at = now(), payload = excluded.payload`,
		instance, keepFrom, kinds, starts, payloads)
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// ReadRealtime returns the parts of every instance but except published
// at or after since (by PostgreSQL's clock; a zero since reads them all),
// oldest slot first, an instance's parts of a slot next to each other,
// and PostgreSQL's clock at the read. Errors wrap
// keys.ErrUnavailable when PostgreSQL cannot be reached.
func (c *Cluster) ReadRealtime(ctx context.Context, except string, since time.Time) (parts []PeerPart, readAt time.Time, err error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := c.pool.QueryRow(ctx, `SELECT now()`).Scan(&readAt); err != nil {
		return nil, time.Time{}, unavailable(err)
	}
	rows, err := c.pool.Query(ctx, `SELECT instance_id, kind, start, published_at, payload FROM apiwarden_realtime
		WHERE instance_id <> $1 AND published_at >= $2 ORDER BY start, instance_id, kind`, except, since)
	if err != nil {
		return nil, time.Time{}, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p PeerPart
		var kind int16
		if err := rows.Scan(&p.Instance, &kind, &p.Start, &p.PublishedAt, &p.Payload); err != nil {
			return nil, time.Time{}, unavailable(err)
		}
		p.Kind, p.Start = analytics.RealtimePartKind(kind), p.Start.UTC()
		parts = append(parts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, unavailable(err)
	}
	return parts, readAt, nil
}

// ExpireRealtime deletes every instance's rows of slots that start before
// before, and returns how many: the rows of instances that stopped, which
// no longer delete their own. Errors wrap keys.ErrUnavailable when
// PostgreSQL cannot be reached.
func (c *Cluster) ExpireRealtime(ctx context.Context, before time.Time) (int64, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	tag, err := c.pool.Exec(ctx, `DELETE FROM apiwarden_realtime WHERE start < $1`, before)
	if err != nil {
		return 0, unavailable(err)
	}
	return tag.RowsAffected(), nil
}

// RealtimeSyncOptions configure a RealtimeSync; zero values take the
// defaults.
type RealtimeSyncOptions struct {
	// Instance is this instance's id; required.
	Instance string
	// Interval is the time between two rounds (default 1s).
	Interval time.Duration
	// Leads says whether this instance holds the alerts duty, whose
	// holder also deletes the rows of instances gone; nil never does.
	Leads func() bool
	// Now is the clock that stamps slots (default time.Now).
	Now func() time.Time
}

// realtimeReadOverlap is how far before the last read's clock the next
// read starts: a publish that began before the read but committed after
// it carries an earlier published_at, and must not be missed. Parts
// carry absolute values, so reading one twice is harmless.
const realtimeReadOverlap = 5 * time.Second

// expireEvery is how often the alerts leader deletes other instances'
// expired rows.
const expireEvery = 10 * time.Second

// RealtimeSync makes the realtime view cluster-wide: every Interval, at
// the same moments on every instance (publishPhase, readPhase), it
// publishes this instance's ring in one statement (the slot in progress,
// seconds and tables, and the last state of a slot just over), then reads what the others
// published since its last read and merges it into its Peers. The data of
// an instance that stops ages out of every view as the window moves on.
// While PostgreSQL is unreachable the view shows this instance alone and
// the unpublished slots wait in its ring; both catch up on the first
// round after it returns. Nothing on the request path waits for it.
//
// Run and Stop follow internal/lifecycle.
type RealtimeSync struct {
	c    *Cluster
	ring *analytics.Realtime
	opts RealtimeSyncOptions
	log  *slog.Logger
	life lifecycle.State

	// Owned by Run's goroutine.
	from       time.Time // the first slot not yet published in full
	since      time.Time // where the next read starts (PostgreSQL's clock)
	lastExpiry time.Time
	applied    map[partID]time.Time // published_at of each part applied
}

// partID names one row of apiwarden_realtime.
type partID struct {
	instance string
	kind     analytics.RealtimePartKind
	start    int64 // Unix seconds
}

// NewRealtimeSync makes the RealtimeSync of ring on c.
func NewRealtimeSync(c *Cluster, ring *analytics.Realtime, opts RealtimeSyncOptions) *RealtimeSync {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Leads == nil {
		opts.Leads = func() bool { return false }
	}
	return &RealtimeSync{c: c, ring: ring, opts: opts, log: c.log, applied: make(map[partID]time.Time)}
}

// The phases of a round within its Interval, from the Interval's start
// on the wall clock (a whole second by default): every instance publishes
// at the first, once the second just ended is complete, and reads at the
// second, by when the others' publishes have committed. A request then
// shows on every instance about 1.4 intervals after its second began, at
// most, rather than up to three intervals with rounds at random offsets.
// A publish that commits later is read by the next round.
const (
	publishPhase = 0.1
	readPhase    = 0.4
)

// Run publishes and reads once an Interval, at the phases above, until
// ctx ends or Stop is called. A failed step is logged at debug level (the
// listener already warns of an outage) and retried on the next round.
func (s *RealtimeSync) Run(ctx context.Context) error {
	return s.life.Run("cluster realtime", func(stop <-chan struct{}) error {
		for {
			for _, step := range []struct {
				phase float64
				do    func(context.Context) error
			}{{publishPhase, s.publish}, {readPhase, s.read}} {
				timer := time.NewTimer(s.untilPhase(time.Now(), step.phase))
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil
				case <-stop:
					timer.Stop()
					return nil
				case <-timer.C:
				}
				if err := step.do(ctx); err != nil {
					s.log.Debug("cluster realtime round failed; will retry", "err", err)
				}
			}
		}
	})
}

// untilPhase is how long from now until the next moment at phase (a
// fraction) of an Interval, counted from the wall clock's zero.
func (s *RealtimeSync) untilPhase(now time.Time, phase float64) time.Duration {
	at := now.Truncate(s.opts.Interval).Add(time.Duration(phase * float64(s.opts.Interval)))
	if !at.After(now) {
		at = at.Add(s.opts.Interval)
	}
	return at.Sub(now)
}

// Stop ends Run and waits for it.
func (s *RealtimeSync) Stop() { s.life.Stop(nil) }

// Round publishes, then reads and merges, once: what Run does every
// Interval. It must not be called while Run runs.
func (s *RealtimeSync) Round(ctx context.Context) error {
	if err := s.publish(ctx); err != nil {
		return err
	}
	return s.read(ctx)
}

// keepFrom is the start of the oldest slot that still overlaps the ring's
// window at now.
func (s *RealtimeSync) keepFrom(now time.Time) time.Time {
	return now.Add(-s.ring.Span() - analytics.SlotWidth)
}

// publish writes this instance's new parts, in one statement, and, on
// the alerts leader, deletes the rows of instances gone.
func (s *RealtimeSync) publish(ctx context.Context) error {
	now := s.opts.Now()
	keepFrom := s.keepFrom(now)
	parts, next := s.ring.Parts(now, s.from)
	if len(parts) > 0 {
		if err := s.c.PublishRealtime(ctx, s.opts.Instance, parts, keepFrom); err != nil {
			return err // s.from stays: the same slots are published next time
		}
	}
	s.from = next
	if s.opts.Leads() && now.Sub(s.lastExpiry) >= expireEvery {
		if _, err := s.c.ExpireRealtime(ctx, keepFrom); err != nil {
			return err
		}
		s.lastExpiry = now
	}
	return nil
}

// read applies what the other instances published since the last read.
func (s *RealtimeSync) read(ctx context.Context) error {
	keepFrom := s.keepFrom(s.opts.Now())
	peers, readAt, err := s.c.ReadRealtime(ctx, s.opts.Instance, s.since)
	if err != nil {
		return err
	}
	s.since = readAt.Add(-realtimeReadOverlap)
	// An instance's parts of one slot, its seconds and its tables of the
	// same publish, are applied together, so no read of the ring sees
	// the one without the other.
	var slot []analytics.RealtimePart
	for i, p := range peers {
		// A part read again within the overlap is applied once: decoding
		// a slot's tables of a thousand keys is the round's main cost.
		id := partID{p.Instance, p.Kind, p.Start.Unix()}
		if at, ok := s.applied[id]; !ok || !at.Equal(p.PublishedAt) {
			s.applied[id] = p.PublishedAt
			slot = append(slot, p.RealtimePart)
		}
		if i+1 < len(peers) && peers[i+1].Instance == p.Instance && peers[i+1].Start.Equal(p.Start) {
			continue
		}
		if err := s.ring.Peers().Apply(p.Instance, slot...); err != nil {
			// One instance's bad row (another version's encoding) must
			// not hide the others.
			s.log.Warn("cluster realtime: a peer's part was not merged", "err", err)
		}
		slot = slot[:0]
	}
	for id := range s.applied {
		if id.start < keepFrom.Unix() {
			delete(s.applied, id)
		}
	}
	s.ring.Peers().Forget(keepFrom)
	return nil
}
