package telemetry

import "github.com/prometheus/client_golang/prometheus"

// RetentionReporter is what ClusterRetention reads: cluster.Retention in
// the app.
type RetentionReporter interface {
	// DroppedPartitions, DeletedRows and Failures count since the
	// process started.
	DroppedPartitions() uint64
	DeletedRows() uint64
	Failures() uint64
}

// ClusterRetention reports what retention deleted from the cluster's
// PostgreSQL while this instance led its duty. r may be nil (no cluster):
// then it reports nothing.
func ClusterRetention(r RetentionReporter) prometheus.Collector {
	partitions := NewDesc("cluster_retention_dropped_partitions_total", "Daily partitions of request records this process dropped from PostgreSQL as the retention leader.")
	rows := NewDesc("cluster_retention_deleted_rows_total", "Rollup cells, shipped-batch and erasure rows this process deleted from PostgreSQL as the retention leader.")
	failures := NewDesc("cluster_retention_failures_total", "Retention passes in PostgreSQL that failed; the next one tries again.")
	return Func{
		Families: []*prometheus.Desc{partitions, rows, failures},
		Read: func() []Reading {
			if r == nil {
				return nil
			}
			return []Reading{
				{Desc: partitions, Type: prometheus.CounterValue, Value: float64(r.DroppedPartitions())},
				{Desc: rows, Type: prometheus.CounterValue, Value: float64(r.DeletedRows())},
				{Desc: failures, Type: prometheus.CounterValue, Value: float64(r.Failures())},
			}
		},
	}
}
