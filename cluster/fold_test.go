package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/cluster"
)

// newFold is the fold duty of c as of sourceNow: the data set's hours and
// days before the one in progress are closed.
func newFold(c *cluster.Cluster, lead cluster.Leadership) *cluster.Fold {
	return cluster.NewFold(c, lead, cluster.FoldOptions{Now: func() time.Time { return sourceNow }, Poll: 10 * time.Millisecond})
}

// cellRows counts apiwarden_cells' rows: all of them, the merged ones
// ('*') and those a reader reads.
func cellRows(t *testing.T, pool *pgxpool.Pool) (all, merged, visible int64) {
	t.Helper()
	err := pool.QueryRow(ctxFor(t, 30*time.Second), `SELECT count(*), count(*) FILTER (WHERE instance_id = '*'),
		count(*) FILTER (WHERE instance_id = '*' OR NOT folded) FROM apiwarden_cells`).Scan(&all, &merged, &visible)
	if err != nil {
		t.Fatal(err)
	}
	return all, merged, visible
}

// Three instances ship a third of the data set each; folding the closed
// hours and days leaves every answer the rollups give as it was (the
// shared table against one bbolt file with all of it), readers then read
// fewer rows, and a second fold folds nothing and changes nothing.
func TestFoldKeepsAnswers(t *testing.T) {
	url := pg.Database(t)
	whole := newShipNode(t, url, "whole", nil) // recorded, never shipped
	recordSourceData(t, whole.rec, nil)
	var nodes []*shipNode
	for part, id := range []string{"a", "b", "c"} {
		n := newShipNode(t, url, id, nil)
		recordSourceData(t, n.rec, func(i int) bool { return i%3 == part })
		n.drain(t)
		nodes = append(nodes, n)
	}
	c := nodes[0].cluster
	p := pairOver(t, whole.rd, newSource(t, c))
	all, _, visibleBefore := cellRows(t, c.Pool())

	fold := newFold(c, nil)
	folded, err := fold.Apply(ctxFor(t, time.Minute))
	if err != nil || folded == 0 {
		t.Fatalf("fold: %d cells, %v", folded, err)
	}
	allAfter, merged, visible := cellRows(t, c.Pool())
	if merged != folded || allAfter != all+merged || visible >= visibleBefore {
		t.Fatalf("after folding %d cells: %d rows (%d before), %d merged, %d read by readers (%d before)",
			folded, allAfter, all, merged, visible, visibleBefore)
	}
	compareSources(t, p, cellCases())

	if again, err := fold.Apply(ctxFor(t, time.Minute)); err != nil || again != 0 {
		t.Fatalf("second fold: %d cells, %v; want 0", again, err)
	}
	if a, m, v := cellRows(t, c.Pool()); a != allAfter || m != merged || v != visible {
		t.Fatalf("second fold changed the rows: %d, %d merged, %d read; want %d, %d, %d", a, m, v, allAfter, merged, visible)
	}
}

// An instance ships late into cells already folded (updates of folded
// rows and rows new to a folded cell), as a spool drained after an outage
// does: the answers stay exact, before and after the next fold.
func TestFoldStaysExactAfterLateUpdates(t *testing.T) {
	url := pg.Database(t)
	whole := newShipNode(t, url, "whole", nil)
	recordSourceData(t, whole.rec, nil)
	a, b := newShipNode(t, url, "a", nil), newShipNode(t, url, "b", nil)
	late := func(i int) bool { return i%2 == 1 && i%5 == 1 }
	recordSourceData(t, a.rec, func(i int) bool { return i%2 == 0 })
	recordSourceData(t, b.rec, func(i int) bool { return i%2 == 1 && !late(i) })
	a.drain(t)
	b.drain(t)
	fold := newFold(a.cluster, nil)
	if n, err := fold.Apply(ctxFor(t, time.Minute)); err != nil || n == 0 {
		t.Fatalf("fold: %d cells, %v", n, err)
	}
	_, mergedBefore, _ := cellRows(t, a.cluster.Pool())

	recordSourceData(t, b.rec, late)
	b.drain(t)
	if _, merged, _ := cellRows(t, a.cluster.Pool()); merged >= mergedBefore {
		t.Fatalf("%d merged rows after the late updates, %d before: none was unfolded", merged, mergedBefore)
	}
	p := pairOver(t, whole.rd, newSource(t, a.cluster))
	t.Run("unfolded", func(t *testing.T) { compareSources(t, p, cellCases()) })
	if n, err := fold.Apply(ctxFor(t, time.Minute)); err != nil || n == 0 {
		t.Fatalf("fold after the late updates: %d cells, %v", n, err)
	}
	t.Run("folded_again", func(t *testing.T) { compareSources(t, p, cellCases()) })
}

// The duty folds while this instance leads, and Stop ends it.
func TestFoldRunsWhileLeading(t *testing.T) {
	url := pg.Database(t)
	n := newShipNode(t, url, "a", nil)
	recordSourceData(t, n.rec, nil)
	n.drain(t)
	lead := &flag{asked: make(chan struct{})}
	lead.leading.Store(true)
	fold := newFold(n.cluster, lead)
	done := make(chan error, 1)
	go func() { done <- fold.Run(context.Background()) }()
	deadline := time.Now().Add(30 * time.Second)
	for fold.FoldedCells() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the leader folded nothing in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fold.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, merged, _ := cellRows(t, n.cluster.Pool()); merged != int64(fold.FoldedCells()) {
		t.Fatalf("%d merged rows, the duty counted %d", merged, fold.FoldedCells())
	}
}
