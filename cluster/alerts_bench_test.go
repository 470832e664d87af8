package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
)

// keysTraffic gives n keys an error rate that moves with every call, so
// every pass writes every alert's new value.
type keysTraffic struct {
	aggs   []alerting.Aggregate
	pass   int64
	steady bool // the same rate every pass: nothing to write
}

func (k *keysTraffic) Window(kind alerting.SubjectKind, _ time.Duration, _ time.Time) ([]alerting.Aggregate, error) {
	if kind != alerting.SubjectKey {
		return nil, nil
	}
	if !k.steady {
		k.pass++
	}
	for i := range k.aggs {
		k.aggs[i].Errors5xx = 20 + k.pass%2
	}
	return k.aggs, nil
}

// BenchmarkAlertPassShared: one evaluation pass over 100 firing alerts
// kept in PostgreSQL: the advisory lock, the reload of the open alerts,
// the state machine, and the rewrite of the 100 alerts whose value
// changed, in one transaction (steady: nothing changed, nothing written). bbolt's pass (alerting's BenchmarkEvalPass)
// reads and writes only memory and the changed alerts.
func BenchmarkAlertPassShared(b *testing.B) {
	b.Run("values-change", func(b *testing.B) { benchmarkAlertPass(b, false) })
	b.Run("steady", func(b *testing.B) { benchmarkAlertPass(b, true) })
}

func benchmarkAlertPass(b *testing.B, steady bool) {
	url := pg.Database(b)
	traffic := &keysTraffic{steady: steady}
	for i := range 100 {
		traffic.aggs = append(traffic.aggs, alerting.Aggregate{
			Subject: alerting.Subject{Kind: alerting.SubjectKey, Value: fmt.Sprintf("key_%03d", i)}, Requests: 100})
	}
	rule := errorSpike()
	rule.Subject = alerting.SubjectKey
	n := newAlertNode(b, url, traffic, true, func(o *alerting.Options) { o.Rules = []alerting.Rule{rule} })
	ctx := context.Background()
	now := alertT0
	if err := n.ev.EvalAt(ctx, now); err != nil {
		b.Fatal(err)
	}
	if st := n.ev.Stats(); st.Alerts[alerting.StateFiring] != 100 {
		b.Fatalf("%d firing, want 100", st.Alerts[alerting.StateFiring])
	}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(10 * time.Second)
		if err := n.ev.EvalAt(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
}
