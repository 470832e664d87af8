package demo

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/apiwarden/apiwarden/app"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// PrepareOptions configure Prepare.
type PrepareOptions struct {
	// BackfillDays of history are written when the keys are new; 0 writes
	// none.
	BackfillDays int
	// Scale, Location and Seed are as for the generator.
	Scale    float64
	Location *time.Location
	Seed     uint64
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Prepared is what Prepare did.
type Prepared struct {
	Keys []Key
	// Reused says the data directory already held the demo's keys; their
	// secrets were rotated and no history was written.
	Reused   bool
	Backfill BackfillResult
	// BackfillTook is the wall time of the backfill.
	BackfillTook time.Duration
}

// Prepare readies cfg's data directory before the app opens it (the app
// holds the file lock while it runs): it seeds the demo keys and, for new
// keys, writes opts.BackfillDays of history. New keys are dated to the
// start of that history, so that a key is never used before it existed.
// The key secret is the one the app will use (keys.ResolveSecret): the
// configured one, or the one it keeps in the data directory (created here
// when missing).
func Prepare(ctx context.Context, cfg *config.Config, opts PrepareOptions) (_ Prepared, err error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secret, _, err := keys.ResolveSecret(cfg.Security.KeySecret.Value(), cfg.Server.DataDir)
	if err != nil {
		return Prepared{}, err
	}
	st, err := store.Open(cfg.Server.DataDir, store.Options{Logger: log})
	if err != nil {
		return Prepared{}, err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()

	end := now()
	start := end.Add(-time.Duration(opts.BackfillDays) * 24 * time.Hour)
	// Keys created for a backfill are dated to its start; rotations of
	// existing keys, and everything after seeding, happen now.
	var backdate atomic.Bool
	svc, err := keys.New(keys.Options{
		Store: st, Secret: secret, Prefix: cfg.Security.KeyPrefix, Policy: app.KeyPolicy(cfg),
		CacheSize: 1024, Logger: log,
		Now: func() time.Time {
			if backdate.Load() {
				return start
			}
			return now()
		},
	})
	if err != nil {
		return Prepared{}, err
	}
	defer svc.Close()
	existing, err := demoKeys(svc)
	if err != nil {
		return Prepared{}, err
	}
	backdate.Store(opts.BackfillDays > 0 && len(existing) == 0)
	var p Prepared
	p.Keys, p.Reused, err = SeedKeys(svc)
	backdate.Store(false)
	if err != nil {
		return Prepared{}, err
	}
	if opts.BackfillDays <= 0 || p.Reused {
		return p, nil
	}

	engine, err := historyEngine(cfg, svc)
	if err != nil {
		return Prepared{}, err
	}
	rec, err := metrics.New(metrics.Options{
		Store:               st,
		BufferSize:          1 << 15,
		RawRetentionDays:    cfg.Metrics.RawRetentionDays,
		HourlyRetentionDays: cfg.Metrics.HourlyRetentionDays,
		DailyRetentionDays:  cfg.Metrics.DailyRetentionDays,
		Now:                 now,
		Logger:              log,
	})
	if err != nil {
		return Prepared{}, err
	}
	began := time.Now()
	p.Backfill, err = Backfill(ctx, BackfillOptions{
		Recorder: rec, Decider: engine, Keys: p.Keys, Days: opts.BackfillDays, End: end,
		Scale: opts.Scale, Location: opts.Location, Seed: opts.Seed,
	})
	rec.Stop()
	if err != nil {
		return Prepared{}, fmt.Errorf("demo: backfill: %w", err)
	}
	// last_used_at and the scope denials of the history.
	if err := svc.Flush(); err != nil {
		return Prepared{}, fmt.Errorf("demo: backfill: %w", err)
	}
	p.BackfillTook = time.Since(began)
	return p, nil
}

// historyEngine is apiwarden's decision engine over cfg's routes and
// tiers, with a limiter of its own in memory: history's buckets are
// thrown away, and the live app starts with full ones.
func historyEngine(cfg *config.Config, svc *keys.Service) (*enforce.Engine, error) {
	calendar, err := app.Calendar(cfg)
	if err != nil {
		return nil, err
	}
	limits, err := limiter.New(limiter.Options{Tiers: app.LimiterTiers(cfg), Calendar: calendar})
	if err != nil {
		return nil, err
	}
	policy, err := app.EnforcePolicy(cfg)
	if err != nil {
		return nil, err
	}
	return enforce.NewEngine(svc, limits, policy), nil
}
