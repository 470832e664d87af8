package cluster_test

import (
	"strconv"
	"testing"
	"time"

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
			if err != nil || report.Steps[0].Imported != want {
				b.Fatalf("run %d: %+v, %v", run+1, report.Steps, err)
			}
			b.ReportMetric(float64(time.Since(started).Microseconds())/n, []string{"us/key-first", "us/key-rerun"}[run])
		}
		c.Close()
	}
}
