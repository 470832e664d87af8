package telemetry

import "github.com/prometheus/client_golang/prometheus"

// ErasureReporter is what ClusterErasures reads: cluster.ErasureFollower
// in the app.
type ErasureReporter interface {
	// Failures counts the catch-ups that stopped on an error since the
	// process started; Mark is the highest erasure id applied to the data
	// file (-1 before it was read).
	Failures() uint64
	Mark() int64
}

// ClusterErasures reports how far this instance's data file has applied
// the cluster's erasures. A failures counter that keeps rising with a
// mark that does not move is an erasure held back (docs/privacy.md). r
// may be nil (no cluster): then it reports nothing.
func ClusterErasures(r ErasureReporter) prometheus.Collector {
	failures := NewDesc("cluster_erasure_catchup_failures_total", "Catch-ups of the cluster's erasures on the local data file that stopped on an error; the next notification or resync tries again.")
	mark := NewDesc("cluster_erasure_applied_id", "The highest id of apiwarden_erasures applied to the local data file; -1 before the first catch-up.")
	return Func{
		Families: []*prometheus.Desc{failures, mark},
		Read: func() []Reading {
			if r == nil {
				return nil
			}
			return []Reading{
				{Desc: failures, Type: prometheus.CounterValue, Value: float64(r.Failures())},
				{Desc: mark, Type: prometheus.GaugeValue, Value: float64(r.Mark())},
			}
		},
	}
}
