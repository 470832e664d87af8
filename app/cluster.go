package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/analytics"
	"github.com/apiwarden/apiwarden/api/admin"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/config"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/telemetry"
)

// clusterStartTimeout bounds what cluster mode does during New: reaching
// PostgreSQL, migrating and the first sync of the key mirror. When
// PostgreSQL does not answer in time the instance starts anyway and
// serves from its mirror.
const clusterStartTimeout = 10 * time.Second

// openCluster connects to the cluster's PostgreSQL when [cluster]
// postgres_url is set (and does nothing otherwise). It runs before the
// key service is built, which then writes through it.
func (a *App) openCluster(secret []byte) error {
	url := a.cfg.Cluster.PostgresURL.Value()
	if url == "" {
		return nil
	}
	if a.cfg.Security.KeySecret.Value() == "" {
		return fmt.Errorf("cluster mode needs security.key_secret (or APIWARDEN_KEY_SECRET), the same on every instance: a secret generated into one data directory would make every key fail on the others")
	}
	id, err := InstanceID(a.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	c, err := cluster.Open(ctx, cluster.Options{
		URL:            url,
		InstanceID:     id,
		KeySecretCheck: keys.SecretCheck(secret),
		Logger:         a.log.With("instance", id),
	})
	if err != nil {
		return err
	}
	a.cluster, a.instance = c, id
	a.cleanups = append(a.cleanups, c.Close)
	a.log.Info("cluster mode: keys are shared through PostgreSQL", "instance", id)
	return nil
}

// InstanceID is the id an instance with cfg has in the cluster:
// cluster.instance_id, else the host name. Its shipped request records
// and rollup cells carry it, and so do those `cluster import` copies from
// its data file.
func InstanceID(cfg *config.Config) (string, error) {
	if id := cfg.Cluster.InstanceID; id != "" {
		return id, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cluster.instance_id is empty and the host name is unknown: %w", err)
	}
	return host, nil
}

// keyRecords is the key service's system of record: the cluster, or nil
// (an untyped nil, so keys sees "single instance").
func (a *App) keyRecords() keys.SystemOfRecord {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// startMirror syncs the key mirror once before the instance serves, so a
// fresh data directory (a new pod) knows the cluster's keys when /readyz
// first says ready, and makes the listener that keeps it current. When
// PostgreSQL is down the instance serves what its mirror has; the
// listener catches up once it connects.
func (a *App) startMirror() error {
	if a.cluster == nil {
		return nil
	}
	leader, err := cluster.NewLeader(a.cluster, cluster.LeaderOptions{
		Name: AlertsDuty, Holder: a.instance, TTL: alertLeaseTTL(a.cfg.Alerts.EvaluationInterval.D())})
	if err != nil {
		return err
	}
	a.leader = leader
	if err := a.newRetentionDuty(); err != nil {
		return err
	}
	a.listener = cluster.NewListener(a.cluster, a.keys, cluster.ListenerOptions{
		Handlers: map[string]func(string){cluster.LeadersChannel: func(duty string) {
			leader.Resigned(duty)
			a.retentionLead.Resigned(duty)
		}, cluster.ErasuresChannel: func(id string) {
			// Erasures run on other instances reach this one's data file
			// too; newRecording made the follower, and the listener runs
			// only after New.
			a.follower.Notify(id)
		}},
		// Erasures committed while this instance was not listening are
		// read from PostgreSQL after each connect and quiet resync.
		CatchUp: func() { a.follower.Wake() }})
	a.heartbeat = cluster.NewHeartbeat(a.cluster, a.keys, cluster.HeartbeatOptions{
		ID: a.instance, Version: a.version, StartedAt: a.startedAt})
	if a.shipper, err = cluster.NewShipper(a.cluster, metrics.NewReader(a.st), cluster.ShipperOptions{
		Interval: a.cfg.Metrics.FlushInterval.D(), SpoolMaxRecords: a.cfg.Cluster.SpoolMaxRecords}); err != nil {
		return err
	}
	if !a.cluster.Ready() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	if err := a.keys.Sync(ctx); err != nil {
		a.log.Warn("key mirror not synced at start; serving what it has until PostgreSQL answers", "err", err)
	}
	return nil
}

// analyticsSource is what the analytics routes and the alert evaluator's
// history read: in cluster mode what every instance shipped to
// PostgreSQL, so any instance answers for the whole cluster (and answers
// 503 while PostgreSQL is unreachable, rather than for itself alone);
// otherwise this instance's data file.
func (a *App) analyticsSource() (analytics.Source, error) {
	if a.cluster == nil {
		return metrics.NewReader(a.st), nil
	}
	src, err := cluster.NewSource(a.cluster, cluster.SourceOptions{Now: a.now})
	if err != nil {
		return nil, err
	}
	// Cleanups run last to first: the source's pool closes before the
	// cluster's.
	a.cleanups = append(a.cleanups, src.Close)
	a.usageSrc = src
	return src, nil
}

// AlertsDuty is the name of the alert evaluator's leadership in
// apiwarden_leaders and GET /admin/v1/cluster.
const AlertsDuty = "alerts"

// alertLeaseTTL is the alert leader's lease for an evaluation interval:
// half of it. A leader that dies holds the duty at most that long; a
// follower tries every half lease, and the new leader's evaluator runs
// within one interval after taking it: the next evaluation comes at most
// 1.75 intervals after the old leader's last renewal.
func alertLeaseTTL(interval time.Duration) time.Duration {
	return max(interval/2, 250*time.Millisecond)
}

// RetentionDuty is the name of the leadership that applies retention in
// the cluster's PostgreSQL, in apiwarden_leaders and GET /admin/v1/cluster.
const RetentionDuty = "retention"

// retentionLeaseTTL is the retention leader's lease: the duty runs hourly,
// so a gap after its holder dies matters little, and a longer lease
// renews less often.
const retentionLeaseTTL = 10 * time.Second

// newRetentionDuty makes the election of the retention duty and the
// retention it runs, keeping in PostgreSQL what [metrics] keeps in a data
// file.
func (a *App) newRetentionDuty() error {
	lead, err := cluster.NewLeader(a.cluster, cluster.LeaderOptions{Name: RetentionDuty, Holder: a.instance, TTL: retentionLeaseTTL})
	if err != nil {
		return err
	}
	m := a.cfg.Metrics
	a.retentionLead = lead
	a.pgRetention = cluster.NewRetention(a.cluster, lead, cluster.RetentionOptions{
		RawDays: m.RawRetentionDays, HourlyDays: m.HourlyRetentionDays, DailyDays: m.DailyRetentionDays, Now: a.now})
	// The fold is upkeep of the same tables on the same schedule's
	// leader: one election for both.
	a.pgFold = cluster.NewFold(a.cluster, lead, cluster.FoldOptions{Now: a.now})
	return nil
}

// retentionReporter is the retention duty for telemetry, or an untyped nil.
func (a *App) retentionReporter() telemetry.RetentionReporter {
	if a.pgRetention == nil {
		return nil
	}
	return a.pgRetention
}

// clusterCheck is /readyz's view of the cluster: degraded, not failing,
// while PostgreSQL is unreachable, since known keys still pass.
func (a *App) clusterCheck() admin.ReadyCheck {
	return admin.ReadyCheck{Name: "cluster", Check: func() string {
		if a.cluster.Healthy() {
			return "ok"
		}
		return "degraded: the cluster's PostgreSQL is unreachable; keys are served from the local mirror and admin writes answer 503 until it returns"
	}}
}

// healthReporter is the cluster for telemetry, or an untyped nil.
func (a *App) healthReporter() telemetry.HealthReporter {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// runMirror runs the listener that keeps the key mirror current, the
// heartbeat, the alert and retention leaders' elections, retention and
// the fold of closed cells in PostgreSQL, and the shipper of request records (cluster mode), and
// returns the function that stops them (the leaders resign; the shipper
// ships what is left, so call it after the metrics writer's last flush)
// and waits until they have. Without a cluster it does nothing.
func (a *App) runMirror() (stop func()) {
	if a.listener == nil {
		return func() {}
	}
	// Stopped in this order: the leader resigns while the listener still
	// runs, so nothing on this instance lags behind the handover.
	parts := []struct {
		name string
		part interface {
			Run(context.Context) error
			Stop()
		}
		done chan error
	}{{"leader", a.leader, make(chan error, 1)}, {"retention", a.pgRetention, make(chan error, 1)},
		{"fold", a.pgFold, make(chan error, 1)},
		{"retention leader", a.retentionLead, make(chan error, 1)}, {"heartbeat", a.heartbeat, make(chan error, 1)},
		{"listener", a.listener, make(chan error, 1)}, {"erasure follower", a.follower, make(chan error, 1)},
		{"shipper", a.shipper, make(chan error, 1)}}
	for _, p := range parts {
		go func() { p.done <- p.part.Run(context.Background()) }()
	}
	return func() {
		for _, p := range parts {
			p.part.Stop()
			if err := <-p.done; err != nil {
				a.log.Error("cluster "+p.name, "err", err)
			}
		}
	}
}

// shipReporter is the shipper for telemetry, or an untyped nil.
func (a *App) shipReporter() telemetry.ShipReporter {
	if a.shipper == nil {
		return nil
	}
	return a.shipper
}

// erasureReporter is the erasure follower for /metrics, or an untyped nil.
func (a *App) erasureReporter() telemetry.ErasureReporter {
	if a.follower == nil {
		return nil
	}
	return a.follower
}

// clusterView is the cluster for GET /admin/v1/cluster, or an untyped nil.
func (a *App) clusterView() admin.ClusterView {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// closeCluster closes the pools, once nothing uses them.
func (a *App) closeCluster() {
	if a.usageSrc != nil {
		a.usageSrc.Close()
	}
	if a.cluster != nil {
		a.cluster.Close()
	}
}

// sessionStore keeps dashboard sessions in the cluster's PostgreSQL, or
// is an untyped nil (sessions in memory).
func (a *App) sessionStore() admin.SessionStore {
	if a.cluster == nil {
		return nil
	}
	return a.cluster
}

// alertState keeps the alerts in the cluster's PostgreSQL, shared by
// every instance, or is an untyped nil (the data file).
func (a *App) alertState() alerting.StateStore {
	if a.cluster == nil {
		return nil
	}
	return a.cluster.AlertStore()
}

// alertLeadership says whether this instance evaluates the alerts: the
// cluster's election of the alerts duty, or an untyped nil (always, as a
// single instance).
func (a *App) alertLeadership() alerting.Leadership {
	if a.leader == nil {
		return nil
	}
	return a.leader
}

// runRealtimeSync shares the realtime ring with the other instances in
// cluster mode: it publishes this instance's and merges theirs into it,
// so the realtime routes, the stream and the alert leader's traffic are
// the cluster's (cluster/realtime.go). It returns the function that stops
// it and waits until it has. Without a cluster it does nothing.
func (a *App) runRealtimeSync() (stop func()) {
	if a.cluster == nil {
		return func() {}
	}
	sync := cluster.NewRealtimeSync(a.cluster, a.realtime, cluster.RealtimeSyncOptions{
		Instance: a.instance, Leads: a.leader.Leading, Now: a.now})
	done := make(chan error, 1)
	go func() { done <- sync.Run(context.Background()) }()
	return func() {
		sync.Stop()
		if err := <-done; err != nil {
			a.log.Error("cluster realtime", "err", err)
		}
	}
}
