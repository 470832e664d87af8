package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apiwarden/apiwarden/metrics"
)

// ShipReporter is what Shipping reads: cluster.Shipper in the app.
type ShipReporter interface {
	// Backlog reads the records and cells waiting to ship from the data
	// file.
	Backlog() (metrics.Backlog, error)
	// ShippedRecords, ShipFailures, DroppedRecords (over the spool
	// bound), CorruptBlocks (passed unshipped) and ErasedRecords (left
	// out because their key or owner was erased meanwhile) count since
	// the process started.
	ShippedRecords() uint64
	ShipFailures() uint64
	DroppedRecords() uint64
	CorruptBlocks() uint64
	ErasedRecords() uint64
}

// Shipping reports the request records waiting in the data file to be
// shipped to the cluster's PostgreSQL, the age of the oldest, and the
// shipper's counters. s may be nil (no cluster): then it reports nothing.
// A scrape reads the headers of the waiting blocks, one per flush and day,
// and the page headers of the changed cells' bucket.
func Shipping(s ShipReporter) prometheus.Collector {
	waiting := NewDesc("cluster_ship_waiting_records", "Request records recorded in the data file and not yet shipped to the cluster's PostgreSQL.")
	waitingCells := NewDesc("cluster_ship_waiting_cells", "Rollup cells changed in the data file and not yet shipped to the cluster's PostgreSQL.")
	oldest := NewDesc("cluster_ship_oldest_waiting_seconds", "Age of the oldest request record waiting to ship; 0 when none waits.")
	shipped := NewDesc("cluster_shipped_records_total", "Request records this process inserted into PostgreSQL.")
	failures := NewDesc("cluster_ship_failures_total", "Shipping rounds that failed (PostgreSQL unreachable, …); the records wait and ship later.")
	dropped := NewDesc("cluster_ship_dropped_records_total", "Request records deleted unshipped because more than cluster.spool_max_records waited; their rollups are kept.")
	corrupt := NewDesc("cluster_ship_corrupt_blocks_total", "Raw blocks of the data file passed unshipped because they do not decode.")
	erased := NewDesc("cluster_ship_erased_records_total", "Request records left unshipped because their key or owner was erased, on any instance, while they waited.")
	return Func{
		Families: []*prometheus.Desc{waiting, waitingCells, oldest, shipped, failures, dropped, corrupt, erased},
		Read: func() []Reading {
			if s == nil {
				return nil
			}
			out := []Reading{
				{Desc: shipped, Type: prometheus.CounterValue, Value: float64(s.ShippedRecords())},
				{Desc: failures, Type: prometheus.CounterValue, Value: float64(s.ShipFailures())},
				{Desc: dropped, Type: prometheus.CounterValue, Value: float64(s.DroppedRecords())},
				{Desc: corrupt, Type: prometheus.CounterValue, Value: float64(s.CorruptBlocks())},
				{Desc: erased, Type: prometheus.CounterValue, Value: float64(s.ErasedRecords())},
			}
			b, err := s.Backlog()
			if err != nil {
				return out
			}
			age := 0.0
			if b.Records > 0 {
				age = max(time.Since(b.Oldest).Seconds(), 0)
			}
			return append(out,
				Reading{Desc: waiting, Type: prometheus.GaugeValue, Value: float64(b.Records)},
				Reading{Desc: waitingCells, Type: prometheus.GaugeValue, Value: float64(b.Cells)},
				Reading{Desc: oldest, Type: prometheus.GaugeValue, Value: age})
		},
	}
}
