package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// Instance is one member of the cluster as its last heartbeat described
// it. An instance that stopped, or lost PostgreSQL, keeps its row: its
// LastHeartbeat tells how long ago it was last heard of.
type Instance struct {
	ID            string    `json:"id"`
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// MirrorSeq is the last key change its mirror had applied at that
	// beat; MirrorLag how many of the cluster's changes it had not.
	MirrorSeq int64 `json:"mirror_seq"`
	MirrorLag int64 `json:"mirror_lag"`
	// ShipWaiting is how many request records it had not shipped to
	// PostgreSQL yet at its last shipping report, and ShipOldest the
	// time of the oldest of them (nil when none waited).
	ShipWaiting int64      `json:"ship_waiting"`
	ShipOldest  *time.Time `json:"ship_oldest"`
	// ShipWaitingCells is how many rollup cells it had changed and not
	// shipped yet at that report.
	ShipWaitingCells int64 `json:"ship_waiting_cells"`
	// ShipDropped is how many records its data file dropped unshipped
	// over its life, its spool being over [cluster] spool_max_records.
	ShipDropped int64 `json:"ship_dropped"`
}

// Beat records a heartbeat of the instance id: it inserts or replaces the
// instance's row with last_beat set to PostgreSQL's clock, so instances
// with skewed clocks still compare. Errors wrap keys.ErrUnavailable when
// PostgreSQL cannot be reached.
func (c *Cluster) Beat(ctx context.Context, id, version string, startedAt time.Time, mirrorSeq int64) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	_, err := c.pool.Exec(ctx, `INSERT INTO apiwarden_instances (id, version, started_at, last_beat, mirror_seq)
		VALUES ($1, $2, $3, now(), $4)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at = excluded.started_at,
			last_beat = now(), mirror_seq = excluded.mirror_seq`, id, version, startedAt, mirrorSeq)
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Instances lists every instance that ever beat, by id, with its lag
// behind the cluster's last key change. Errors wrap keys.ErrUnavailable
// when PostgreSQL cannot be reached.
func (c *Cluster) Instances(ctx context.Context) ([]Instance, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT i.id, i.version, i.started_at, i.last_beat, i.mirror_seq,
			greatest(k.last_seq - i.mirror_seq, 0), i.ship_waiting, i.ship_oldest, i.ship_waiting_cells, i.ship_dropped
		FROM apiwarden_instances i CROSS JOIN apiwarden_key_changes k ORDER BY i.id`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := []Instance{}
	for rows.Next() {
		var in Instance
		if err := rows.Scan(&in.ID, &in.Version, &in.StartedAt, &in.LastHeartbeat, &in.MirrorSeq, &in.MirrorLag,
			&in.ShipWaiting, &in.ShipOldest, &in.ShipWaitingCells, &in.ShipDropped); err != nil {
			return nil, unavailable(err)
		}
		in.StartedAt, in.LastHeartbeat = in.StartedAt.UTC(), in.LastHeartbeat.UTC()
		if in.ShipOldest != nil {
			utc := in.ShipOldest.UTC()
			in.ShipOldest = &utc
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// HeartbeatOptions describe the instance a Heartbeat reports.
type HeartbeatOptions struct {
	ID, Version string
	StartedAt   time.Time
	// Interval is the time between two beats (default 5s).
	Interval time.Duration
}

// Heartbeat writes this instance's row every Interval, so GET
// /admin/v1/cluster shows who is up and how far each mirror has come.
// Run and Stop follow internal/lifecycle.
type Heartbeat struct {
	c      *Cluster
	mirror Mirror
	opts   HeartbeatOptions
	log    *slog.Logger
	life   lifecycle.State
}

// NewHeartbeat makes the heartbeat of the instance opts describes.
func NewHeartbeat(c *Cluster, mirror Mirror, opts HeartbeatOptions) *Heartbeat {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	return &Heartbeat{c: c, mirror: mirror, opts: opts, log: c.log}
}

// Run beats at once and then every Interval until ctx ends or Stop is
// called. A failed beat (PostgreSQL down) is logged at debug level, since
// the listener already warns of the outage; the next beat tries again.
func (h *Heartbeat) Run(ctx context.Context) error {
	return h.life.Run("cluster heartbeat", func(stop <-chan struct{}) error {
		ticker := time.NewTicker(h.opts.Interval)
		defer ticker.Stop()
		for {
			if err := h.c.Beat(ctx, h.opts.ID, h.opts.Version, h.opts.StartedAt, h.mirror.MirrorSeq()); err != nil {
				h.log.Debug("cluster heartbeat failed; will retry", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-stop:
				return nil
			case <-ticker.C:
			}
		}
	})
}

// Stop ends Run and waits for it.
func (h *Heartbeat) Stop() { h.life.Stop(nil) }
