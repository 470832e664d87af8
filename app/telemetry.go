package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/telemetry"
)

// Families read from the components at scrape time.
var (
	descLimiterSubjects  = telemetry.NewDesc("limiter_subjects", "Bucket entries in memory (subjects plus subject-route pairs).")
	descLimiterEvictions = telemetry.NewDesc("limiter_evictions_total", "Bucket entries dropped: idle (full buckets, no information lost) or forced (the max_subjects cap).", "reason")
	descLimiterSnapshots = telemetry.NewDesc("limiter_snapshots_total", "Bucket snapshots written to the data file, by result.", "result")
	descLimiterSnapDur   = telemetry.NewDesc("limiter_last_snapshot_seconds", "Duration of the last bucket snapshot.")
	descRedisEnabled     = telemetry.NewDesc("redis_enabled", "1 when [redis] url is set and limits are meant to be shared.")
	descRedisHealthy     = telemetry.NewDesc("redis_healthy", "1 when limits are shared through Redis, 0 while falling back to local buckets.")
	descRedisFallbacks   = telemetry.NewDesc("redis_fallbacks_total", "Decisions made by local buckets because Redis was unreachable.")
	descRedisFailures    = telemetry.NewDesc("redis_failures_total", "Redis calls that failed or timed out.")
	descMetricsRecords   = telemetry.NewDesc("metrics_records_total", "Request records by fate: accepted into the buffer, dropped (buffer full), flushed to disk.", "fate")
	descMetricsFailures  = telemetry.NewDesc("metrics_flush_failures_total", "Metrics commits that failed and will be retried.")
	descMetricsFlushDur  = telemetry.NewDesc("metrics_last_flush_seconds", "Duration of the last metrics commit.")
	descMetricsBuffer    = telemetry.NewDesc("metrics_buffer_records", "Records waiting in the buffer for the next flush.")
	descIngestedRoutes   = telemetry.NewDesc("ingested_routes", "Distinct routes POST /v1/events may file (configured, stored, or ingested since start).")
	descIngestedMax      = telemetry.NewDesc("ingested_routes_max", "The cap on them: metrics.max_ingested_routes.")
	descIngestedOverflow = telemetry.NewDesc("ingested_route_overflow_total", "Ingested records filed under the route \"(overflow)\" because their own would pass the cap.")
	descStoreSize        = telemetry.NewDesc("store_file_bytes", "Size of the bbolt data file.")
	descStoreFreePages   = telemetry.NewDesc("store_free_pages", "Pages on the data file's freelist.")
	descStoreReadTxs     = telemetry.NewDesc("store_read_transactions_total", "Read transactions started since the file was opened.")
	descStoreOpenReadTxs = telemetry.NewDesc("store_open_read_transactions", "Read transactions open now.")
	descStoreWriteTime   = telemetry.NewDesc("store_write_seconds_total", "Time spent writing pages to disk in write transactions.")
	descAlerts           = telemetry.NewDesc("alerts", "Open alerts by state (pending, firing, recovering).", "state")
	descAlertsAcked      = telemetry.NewDesc("alerts_acknowledged", "Open alerts a person acknowledged.")
	descAlertEvals       = telemetry.NewDesc("alert_evaluations_total", "Evaluation passes of the alert rules.")
	descNotifications    = telemetry.NewDesc("alert_notifications_total", "Notifications by receiver and result.", "receiver", "result")
)

// collectors report the components' counters.
func (a *App) collectors() []prometheus.Collector {
	limiterSource := telemetry.Func{
		Families: []*prometheus.Desc{descLimiterSubjects, descLimiterEvictions, descLimiterSnapshots, descLimiterSnapDur},
		Read: func() []telemetry.Reading {
			s := a.limits.Stats()
			return []telemetry.Reading{
				{Desc: descLimiterSubjects, Type: prometheus.GaugeValue, Value: float64(s.Subjects)},
				{Desc: descLimiterEvictions, Type: prometheus.CounterValue, Value: float64(s.IdleEvictions), Labels: []string{"idle"}},
				{Desc: descLimiterEvictions, Type: prometheus.CounterValue, Value: float64(s.ForcedEvictions), Labels: []string{"forced"}},
				{Desc: descLimiterSnapshots, Type: prometheus.CounterValue, Value: float64(s.Snapshots - s.SnapshotErrors), Labels: []string{"ok"}},
				{Desc: descLimiterSnapshots, Type: prometheus.CounterValue, Value: float64(s.SnapshotErrors), Labels: []string{"error"}},
				{Desc: descLimiterSnapDur, Type: prometheus.GaugeValue, Value: s.LastSnapshotDuration.Seconds()},
			}
		},
	}
	redisSource := telemetry.Func{
		Families: []*prometheus.Desc{descRedisEnabled, descRedisHealthy, descRedisFallbacks, descRedisFailures},
		Read: func() []telemetry.Reading {
			if a.redis == nil {
				return []telemetry.Reading{
					{Desc: descRedisEnabled, Type: prometheus.GaugeValue, Value: 0},
					{Desc: descRedisFallbacks, Type: prometheus.CounterValue, Value: 0},
					{Desc: descRedisFailures, Type: prometheus.CounterValue, Value: 0},
				}
			}
			s := a.redis.Stats()
			healthy := 0.0
			if s.Healthy {
				healthy = 1
			}
			return []telemetry.Reading{
				{Desc: descRedisEnabled, Type: prometheus.GaugeValue, Value: 1},
				{Desc: descRedisHealthy, Type: prometheus.GaugeValue, Value: healthy},
				{Desc: descRedisFallbacks, Type: prometheus.CounterValue, Value: float64(s.Fallbacks)},
				{Desc: descRedisFailures, Type: prometheus.CounterValue, Value: float64(s.Failures)},
			}
		},
	}
	metricsSource := telemetry.Func{
		Families: []*prometheus.Desc{descMetricsRecords, descMetricsFailures, descMetricsFlushDur, descMetricsBuffer},
		Read: func() []telemetry.Reading {
			s := a.rec.Stats()
			return []telemetry.Reading{
				{Desc: descMetricsRecords, Type: prometheus.CounterValue, Value: float64(s.Accepted), Labels: []string{"accepted"}},
				{Desc: descMetricsRecords, Type: prometheus.CounterValue, Value: float64(s.Dropped), Labels: []string{"dropped"}},
				{Desc: descMetricsRecords, Type: prometheus.CounterValue, Value: float64(s.Flushed), Labels: []string{"flushed"}},
				{Desc: descMetricsFailures, Type: prometheus.CounterValue, Value: float64(s.FlushFailures)},
				{Desc: descMetricsFlushDur, Type: prometheus.GaugeValue, Value: s.LastFlushDuration.Seconds()},
				{Desc: descMetricsBuffer, Type: prometheus.GaugeValue, Value: float64(s.BufferLen)},
			}
		},
	}
	ingestSource := telemetry.Func{
		Families: []*prometheus.Desc{descIngestedRoutes, descIngestedMax, descIngestedOverflow},
		Read: func() []telemetry.Reading {
			s := a.routeCap.Stats()
			return []telemetry.Reading{
				{Desc: descIngestedRoutes, Type: prometheus.GaugeValue, Value: float64(s.Known)},
				{Desc: descIngestedMax, Type: prometheus.GaugeValue, Value: float64(s.Max)},
				{Desc: descIngestedOverflow, Type: prometheus.CounterValue, Value: float64(s.Overflowed)},
			}
		},
	}
	storeSource := telemetry.Func{
		Families: []*prometheus.Desc{descStoreSize, descStoreFreePages, descStoreReadTxs, descStoreOpenReadTxs, descStoreWriteTime},
		Read: func() []telemetry.Reading {
			s := a.st.Stats()
			return []telemetry.Reading{
				{Desc: descStoreSize, Type: prometheus.GaugeValue, Value: float64(s.FileSize)},
				{Desc: descStoreFreePages, Type: prometheus.GaugeValue, Value: float64(s.FreePages)},
				{Desc: descStoreReadTxs, Type: prometheus.CounterValue, Value: float64(s.TxsStarted)},
				{Desc: descStoreOpenReadTxs, Type: prometheus.GaugeValue, Value: float64(s.OpenReadTxs)},
				{Desc: descStoreWriteTime, Type: prometheus.CounterValue, Value: s.WriteTimeSum.Seconds()},
			}
		},
	}
	alertSource := telemetry.Func{
		Families: []*prometheus.Desc{descAlerts, descAlertsAcked, descAlertEvals, descNotifications},
		Read: func() []telemetry.Reading {
			s := a.alerts.Stats()
			out := []telemetry.Reading{
				{Desc: descAlertsAcked, Type: prometheus.GaugeValue, Value: float64(s.Acknowledged)},
				{Desc: descAlertEvals, Type: prometheus.CounterValue, Value: float64(s.Evaluations)},
			}
			for _, state := range []alerting.State{alerting.StatePending, alerting.StateFiring, alerting.StateRecovering} {
				out = append(out, telemetry.Reading{Desc: descAlerts, Type: prometheus.GaugeValue, Value: float64(s.Alerts[state]), Labels: []string{string(state)}})
			}
			for _, n := range s.Notifiers {
				for result, v := range map[string]uint64{"sent": n.Sent, "failed": n.Failed, "dropped": n.Dropped} {
					out = append(out, telemetry.Reading{Desc: descNotifications, Type: prometheus.CounterValue, Value: float64(v), Labels: []string{n.Name, result}})
				}
			}
			return out
		},
	}
	return []prometheus.Collector{limiterSource, redisSource, metricsSource, ingestSource, storeSource, alertSource}
}
