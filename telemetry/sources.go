package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Gauge and counter readings a source reports at scrape time.
type (
	// Reading is one value of one family, with its label values.
	Reading struct {
		Desc   *prometheus.Desc
		Type   prometheus.ValueType
		Value  float64
		Labels []string
	}
	// Func is a collector made from a function that reads a component's
	// counters. Families lists every Desc it may report.
	Func struct {
		Families []*prometheus.Desc
		Read     func() []Reading
	}
)

// Describe sends the families.
func (f Func) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range f.Families {
		ch <- d
	}
}

// Collect reads the component and sends its values.
func (f Func) Collect(ch chan<- prometheus.Metric) {
	for _, r := range f.Read() {
		ch <- prometheus.MustNewConstMetric(r.Desc, r.Type, r.Value, r.Labels...)
	}
}

// NewDesc is prometheus.NewDesc with apiwarden's prefix.
func NewDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("apiwarden_"+name, help, labels, nil)
}
