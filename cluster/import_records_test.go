package cluster_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// Importing a single instance's data file (raw records sampled at 50%)
// twice: the first run copies every raw record as a batch of the file's
// instance id and every cell as that instance's row, a dry run and the
// second run find everything there; then a shipper of the same data file
// under the same id, with more traffic, inserts only what is new, and
// the cells stay equal to the file's.
func TestImportRecordsAndRollupsTwice(t *testing.T) {
	url := pg.Database(t)
	dir := t.TempDir()
	path := filepath.Join(dir, store.FileName)
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	single := newShipNodeWith(t, url, "single", metrics.Options{Store: st, SampleRate: 0.5})
	start := time.Date(2026, 3, 1, 20, 0, 0, 0, time.UTC)
	single.record(t, 4000, start, 30*time.Second) // 33 hours: two UTC days
	backlog, err := single.rd.ShipBacklog()
	if err != nil || backlog.Records < 1500 || backlog.Records > 2500 {
		t.Fatalf("raw records kept at 50%% of 4000: %+v, %v", backlog, err)
	}
	cells := fileCells(t, single.rd, nil)
	single.rec.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	c := openClusterFor(t, url, testSecret)
	opts := cluster.ImportOptions{InstanceID: "single"}
	dry := runImport(t, c, path, cluster.ImportOptions{InstanceID: "single", DryRun: true})
	if r, cs := step(t, dry, "records"), step(t, dry, "rollups"); r.Imported != backlog.Records || cs.Imported != len(cells) {
		t.Fatalf("dry run: records %+v, rollups %+v; want %d records and %d cells to import", r, cs, backlog.Records, len(cells))
	}
	if rows, _ := shippedCounts(t, single); rows != 0 {
		t.Fatalf("the dry run wrote %d records", rows)
	}
	first, progress := runImportProgress(t, c, path, opts)
	if r, cs := step(t, first, "records"), step(t, first, "rollups"); r.Imported != backlog.Records || r.Skipped != 0 ||
		cs.Imported != len(cells) || cs.Skipped != 0 {
		t.Fatalf("first import: records %+v, rollups %+v; want %d and %d imported", r, cs, backlog.Records, len(cells))
	}
	for _, line := range []string{fmt.Sprintf("records: %d/%d\n", backlog.Records, backlog.Records), "rollups: "} {
		if !strings.Contains(progress, line) {
			t.Errorf("no %q progress line:\n%s", line, progress)
		}
	}
	for i, opts := range []cluster.ImportOptions{{InstanceID: "single", DryRun: true}, opts} {
		again := runImport(t, c, path, opts)
		if r, cs := step(t, again, "records"), step(t, again, "rollups"); r.Imported != 0 || r.Skipped != backlog.Records ||
			cs.Imported != 0 || cs.Skipped != len(cells) {
			t.Fatalf("run %d after the import: records %+v, rollups %+v; want everything skipped", i, r, cs)
		}
	}
	if rows, distinct := shippedCounts(t, single); rows != backlog.Records || distinct != rows {
		t.Fatalf("%d records (%d distinct) after two imports, want %d", rows, distinct, backlog.Records)
	}
	sameCells(t, "after two imports", databaseCells(t, c.Pool()), cells)

	// The data file's own instance joins the cluster under the same id.
	st, err = store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	joined := newShipNodeWith(t, url, "single", metrics.Options{Store: st, SampleRate: 0.5, MarkChangedCells: true})
	joined.next = single.next
	joined.record(t, 1000, start.Add(2*time.Hour), time.Second)
	// Every raw record of the file, imported or new; shipping deletes
	// them from it, so they are counted before the drain.
	after, err := joined.rd.BatchSizesAfter(ctxFor(t, time.Minute), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	joined.drain(t)
	all := 0
	for _, b := range after {
		all += b.Records
	}
	wantShipped(t, joined, all)
	sameCells(t, "after the instance shipped", databaseCells(t, c.Pool()), fileCells(t, joined.rd, nil))
}

// A data file copied before a key's usage was erased in the cluster, then
// imported: the key's records and cells stay out, as a shipper leaves
// them out (ship_erasures.go), and everything else comes in exactly.
func TestImportLeavesOutErasedUsage(t *testing.T) {
	url := pg.Database(t)
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	single := newShipNodeWith(t, url, "single", metrics.Options{Store: st})
	single.record(t, 700, time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Second)
	cells := fileCells(t, single.rd, nil)
	erasedCells := 0
	for id := range cells {
		if id.dim == metrics.DimKey && id.value == "key_3" {
			delete(cells, id)
			erasedCells++
		}
	}
	single.rec.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	c := openClusterFor(t, url, testSecret)
	if _, err := c.EraseUsage(ctxFor(t, 30*time.Second), metrics.EraseRequest{KeyID: "key_3", Rollups: true}, nil); err != nil {
		t.Fatal(err)
	}
	counts := keyCounts(700)
	pool := c.Pool()
	// A dry run counts what the import then writes: the erased usage
	// left out of both.
	for _, dry := range []bool{true, false} {
		report := runImport(t, c, filepath.Join(dir, store.FileName), cluster.ImportOptions{InstanceID: "single", DryRun: dry})
		if r, cs := step(t, report, "records"), step(t, report, "rollups"); r.Imported != 700-counts["key_3"] || r.Skipped != 0 ||
			cs.Imported != len(cells) || cs.Skipped != 0 || len(r.Notes) != 1 || len(cs.Notes) != 1 {
			t.Fatalf("import (dry run %v): records %+v, rollups %+v; want %d records and %d cells, a note each on the %d and %d erased",
				dry, r, cs, 700-counts["key_3"], len(cells), counts["key_3"], erasedCells)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM apiwarden_records`); dry && n != 0 {
			t.Fatalf("the dry run wrote %d records", n)
		}
	}
	for key, want := range counts {
		if key == "key_3" {
			want = 0
		}
		if n := countRows(t, pool, `SELECT count(*) FROM apiwarden_records WHERE key_id = $1`, key); n != want {
			t.Errorf("%s: %d records in PostgreSQL, want %d", key, n, want)
		}
	}
	sameCells(t, "after the import", databaseCells(t, pool), cells)
}
