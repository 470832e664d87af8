package cluster_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

// BenchmarkImportKeys imports a data file of 2,000 keys, each created and
// updated (two audit events), into an empty cluster, and then again (all
// skipped): the time a move to a cluster takes per key, first run and
// rerun.
func BenchmarkImportKeys(b *testing.B) {
	const n = 2000
	path, svc, closeFile := openSingle(b)
	for i := range n {
		k, _, err := svc.Create(keys.CreateParams{Name: "k" + strconv.Itoa(i), OwnerID: "org"}, "admin")
		if err != nil {
			b.Fatal(err)
		}
		name := "renamed"
		if _, err := svc.Update(k.ID, keys.Patch{Name: &name}, "admin"); err != nil {
			b.Fatal(err)
		}
	}
	closeFile()
	src, err := store.OpenReadOnly(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	benchImportTwice(b, src, 0, n, "key")
}

// benchImportTwice imports src into a new cluster database and again,
// b.N times, checking that the first run imports n items in step and the
// second none, and reports the time per item of each as
// us/<item>-first and us/<item>-rerun.
func benchImportTwice(b *testing.B, src *store.Store, step, n int, item string) {
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c, err := cluster.Open(ctxFor(b, time.Minute), cluster.Options{URL: pg.Database(b), KeySecretCheck: keys.SecretCheck([]byte(testSecret))})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for run, want := range []int{n, 0} {
			started := time.Now()
			report, err := c.Import(ctxFor(b, 5*time.Minute), src, cluster.ImportOptions{})
			if err != nil || report.Steps[step].Imported != want {
				b.Fatalf("run %d: %+v, %v", run+1, report.Steps, err)
			}
			b.ReportMetric(float64(time.Since(started).Microseconds())/float64(n), []string{"us/" + item + "-first", "us/" + item + "-rerun"}[run])
		}
		c.Close()
	}
}

// BenchmarkImportAlerts imports a data file of 1,000 resolved alerts,
// three history transitions each, into an empty cluster, and then again
// (all skipped): the time per alert, first run and rerun.
func BenchmarkImportAlerts(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	var c alerting.Changes
	for i := range n {
		at := alertT0.Add(time.Duration(i) * time.Minute)
		fp := fmt.Sprintf("%016x", i)
		a := alerting.Alert{ID: fp + "-" + strconv.Itoa(i+1), Fingerprint: fp, Rule: "error-spike", Type: alerting.ErrorSpike,
			Severity: alerting.SeverityHigh, State: alerting.StateResolved, Labels: map[string]string{"alertname": "error-spike"},
			ActiveAt: at, FiredAt: at, ResolvedAt: at.Add(30 * time.Second)}
		c.Put = append(c.Put, a)
		for _, tr := range [][2]alerting.State{{alerting.StateInactive, alerting.StatePending}, {alerting.StatePending, alerting.StateFiring}, {alerting.StateFiring, alerting.StateResolved}} {
			c.Transitions = append(c.Transitions, alerting.Transition{AlertID: a.ID, Fingerprint: fp, Rule: a.Rule, At: at, From: tr[0], To: tr[1]})
		}
	}
	c.Seq = n
	if err := alerting.NewStoreState(st).Update(context.Background(), func(w alerting.StateWriter) error { return w.Save(c) }); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	src, err := store.OpenReadOnly(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	benchImportTwice(b, src, 1, n, "alert")
}
