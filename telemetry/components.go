package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// The collectors below read a long-running component's Stats at scrape
// time, so /metrics costs the request path nothing. Each builds its own
// descriptors, so nothing here is package state. Dashboards and alert
// rules query the names and labels: app/telemetry_test.go parses them.

// Limiter reports l's bucket entries, evictions and snapshots.
func Limiter(l *limiter.Limiter) prometheus.Collector {
	subjects := NewDesc("limiter_subjects", "Bucket entries in memory (subjects plus subject-route pairs).")
	evictions := NewDesc("limiter_evictions_total", "Bucket entries dropped: idle (full buckets, no information lost) or forced (the max_subjects cap).", "reason")
	snapshots := NewDesc("limiter_snapshots_total", "Bucket snapshots written to the data file, by result.", "result")
	snapshotDur := NewDesc("limiter_last_snapshot_seconds", "Duration of the last bucket snapshot.")
	return Func{
		Families: []*prometheus.Desc{subjects, evictions, snapshots, snapshotDur},
		Read: func() []Reading {
			s := l.Stats()
			return []Reading{
				{Desc: subjects, Type: prometheus.GaugeValue, Value: float64(s.Subjects)},
				{Desc: evictions, Type: prometheus.CounterValue, Value: float64(s.IdleEvictions), Labels: []string{"idle"}},
				{Desc: evictions, Type: prometheus.CounterValue, Value: float64(s.ForcedEvictions), Labels: []string{"forced"}},
				{Desc: snapshots, Type: prometheus.CounterValue, Value: float64(s.Snapshots - s.SnapshotErrors), Labels: []string{"ok"}},
				{Desc: snapshots, Type: prometheus.CounterValue, Value: float64(s.SnapshotErrors), Labels: []string{"error"}},
				{Desc: snapshotDur, Type: prometheus.GaugeValue, Value: s.LastSnapshotDuration.Seconds()},
			}
		},
	}
}

// Redis reports whether limits are shared through r and how often that
// failed. r may be nil (no [redis] url): then it reports redis_enabled 0
// and zero counters, and no redis_healthy, so a dashboard can tell
// "not configured" from "down".
func Redis(r *limiter.Redis) prometheus.Collector {
	enabled := NewDesc("redis_enabled", "1 when [redis] url is set and limits are meant to be shared.")
	healthy := NewDesc("redis_healthy", "1 when limits are shared through Redis, 0 while falling back to local buckets.")
	fallbacks := NewDesc("redis_fallbacks_total", "Decisions made by local buckets because Redis was unreachable.")
	failures := NewDesc("redis_failures_total", "Redis calls that failed or timed out.")
	return Func{
		Families: []*prometheus.Desc{enabled, healthy, fallbacks, failures},
		Read: func() []Reading {
			if r == nil {
				return []Reading{
					{Desc: enabled, Type: prometheus.GaugeValue, Value: 0},
					{Desc: fallbacks, Type: prometheus.CounterValue, Value: 0},
					{Desc: failures, Type: prometheus.CounterValue, Value: 0},
				}
			}
			s := r.Stats()
			up := 0.0
			if s.Healthy {
				up = 1
			}
			return []Reading{
				{Desc: enabled, Type: prometheus.GaugeValue, Value: 1},
				{Desc: healthy, Type: prometheus.GaugeValue, Value: up},
				{Desc: fallbacks, Type: prometheus.CounterValue, Value: float64(s.Fallbacks)},
				{Desc: failures, Type: prometheus.CounterValue, Value: float64(s.Failures)},
			}
		},
	}
}

// Recorder reports the fate of request records in rec and its flushes.
func Recorder(rec *metrics.Recorder) prometheus.Collector {
	records := NewDesc("metrics_records_total", "Request records by fate: accepted into the buffer, dropped (buffer full), flushed to disk.", "fate")
	failures := NewDesc("metrics_flush_failures_total", "Metrics commits that failed and will be retried.")
	flushDur := NewDesc("metrics_last_flush_seconds", "Duration of the last metrics commit.")
	buffer := NewDesc("metrics_buffer_records", "Records waiting in the buffer for the next flush.")
	return Func{
		Families: []*prometheus.Desc{records, failures, flushDur, buffer},
		Read: func() []Reading {
			s := rec.Stats()
			return []Reading{
				{Desc: records, Type: prometheus.CounterValue, Value: float64(s.Accepted), Labels: []string{"accepted"}},
				{Desc: records, Type: prometheus.CounterValue, Value: float64(s.Dropped), Labels: []string{"dropped"}},
				{Desc: records, Type: prometheus.CounterValue, Value: float64(s.Flushed), Labels: []string{"flushed"}},
				{Desc: failures, Type: prometheus.CounterValue, Value: float64(s.FlushFailures)},
				{Desc: flushDur, Type: prometheus.GaugeValue, Value: s.LastFlushDuration.Seconds()},
				{Desc: buffer, Type: prometheus.GaugeValue, Value: float64(s.BufferLen)},
			}
		},
	}
}

// Store reports the size and transactions of st's data file.
func Store(st *store.Store) prometheus.Collector {
	size := NewDesc("store_file_bytes", "Size of the bbolt data file.")
	freePages := NewDesc("store_free_pages", "Pages on the data file's freelist.")
	readTxs := NewDesc("store_read_transactions_total", "Read transactions started since the file was opened.")
	openReadTxs := NewDesc("store_open_read_transactions", "Read transactions open now.")
	writeTime := NewDesc("store_write_seconds_total", "Time spent writing pages to disk in write transactions.")
	return Func{
		Families: []*prometheus.Desc{size, freePages, readTxs, openReadTxs, writeTime},
		Read: func() []Reading {
			s := st.Stats()
			return []Reading{
				{Desc: size, Type: prometheus.GaugeValue, Value: float64(s.FileSize)},
				{Desc: freePages, Type: prometheus.GaugeValue, Value: float64(s.FreePages)},
				{Desc: readTxs, Type: prometheus.CounterValue, Value: float64(s.TxsStarted)},
				{Desc: openReadTxs, Type: prometheus.GaugeValue, Value: float64(s.OpenReadTxs)},
				{Desc: writeTime, Type: prometheus.CounterValue, Value: s.WriteTimeSum.Seconds()},
			}
		},
	}
}

// Alerts reports e's open alerts by state, its evaluation passes and its
// notifiers' results. In cluster mode the alert gauges are the cluster's,
// the same on every instance (Evaluator.Stats reads them from the shared
// store), and absent from a scrape when that store cannot be read; the
// counters are this instance's.
func Alerts(e *alerting.Evaluator) prometheus.Collector {
	alerts := NewDesc("alerts", "Open alerts by state (pending, firing, recovering); in cluster mode the cluster's.", "state")
	acked := NewDesc("alerts_acknowledged", "Open alerts a person acknowledged; in cluster mode the cluster's.")
	evals := NewDesc("alert_evaluations_total", "Evaluation passes of the alert rules made by this instance.")
	notifications := NewDesc("alert_notifications_total", "Notifications by receiver and result.", "receiver", "result")
	return Func{
		Families: []*prometheus.Desc{alerts, acked, evals, notifications},
		Read: func() []Reading {
			s := e.Stats()
			out := []Reading{{Desc: evals, Type: prometheus.CounterValue, Value: float64(s.Evaluations)}}
			if s.Alerts != nil {
				out = append(out, Reading{Desc: acked, Type: prometheus.GaugeValue, Value: float64(s.Acknowledged)})
				for _, state := range []alerting.State{alerting.StatePending, alerting.StateFiring, alerting.StateRecovering} {
					out = append(out, Reading{Desc: alerts, Type: prometheus.GaugeValue, Value: float64(s.Alerts[state]), Labels: []string{string(state)}})
				}
			}
			for _, n := range s.Notifiers {
				for result, v := range map[string]uint64{"sent": n.Sent, "failed": n.Failed, "dropped": n.Dropped} {
					out = append(out, Reading{Desc: notifications, Type: prometheus.CounterValue, Value: float64(v), Labels: []string{n.Name, result}})
				}
			}
			return out
		},
	}
}

// IngestedRoutes reports how full rc, the cap on routes /v1/events may
// file, is and how many records it filed under the overflow route.
func IngestedRoutes(rc *metrics.RouteCap) prometheus.Collector {
	known := NewDesc("ingested_routes", "Distinct routes POST /v1/events may file (configured, stored, or ingested since start).")
	maxRoutes := NewDesc("ingested_routes_max", "The cap on them: metrics.max_ingested_routes.")
	overflow := NewDesc("ingested_route_overflow_total", "Ingested records filed under the route \"(overflow)\" because their own would pass the cap.")
	return Func{
		Families: []*prometheus.Desc{known, maxRoutes, overflow},
		Read: func() []Reading {
			s := rc.Stats()
			return []Reading{
				{Desc: known, Type: prometheus.GaugeValue, Value: float64(s.Known)},
				{Desc: maxRoutes, Type: prometheus.GaugeValue, Value: float64(s.Max)},
				{Desc: overflow, Type: prometheus.CounterValue, Value: float64(s.Overflowed)},
			}
		},
	}
}

// HealthReporter is what ClusterStore reads: cluster.Cluster in the app.
type HealthReporter interface {
	// Healthy reports whether the component's remote store answers.
	Healthy() bool
}

// ClusterStore reports whether this instance reaches the cluster's
// PostgreSQL (its system of record for keys). c may be nil (no [cluster]
// postgres_url): then it reports cluster_enabled 0 and no
// cluster_store_up, so a dashboard can tell "single instance" from "down".
func ClusterStore(c HealthReporter) prometheus.Collector {
	enabled := NewDesc("cluster_enabled", "1 when [cluster] postgres_url is set: keys are shared through PostgreSQL.")
	up := NewDesc("cluster_store_up", "1 while the cluster's PostgreSQL answers and this instance's key mirror follows it; 0 while it is down (keys are served from the mirror, admin writes answer 503).")
	return Func{
		Families: []*prometheus.Desc{enabled, up},
		Read: func() []Reading {
			if c == nil {
				return []Reading{{Desc: enabled, Type: prometheus.GaugeValue, Value: 0}}
			}
			v := 0.0
			if c.Healthy() {
				v = 1
			}
			return []Reading{
				{Desc: enabled, Type: prometheus.GaugeValue, Value: 1},
				{Desc: up, Type: prometheus.GaugeValue, Value: v},
			}
		},
	}
}
