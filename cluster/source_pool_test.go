package cluster_test

import (
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/metrics"
)

// After PostgreSQL restarts, every connection the analytics source had
// pooled is dead; each read that draws one runs again on a fresh
// connection and answers, instead of failing (503) once per dead
// connection. The pool here never pings before use (pgxpool skips the
// ping for a connection used within the last second), so every pooled
// connection is drawn dead, whatever the restart's length. Whether a dead
// connection fails in Query or in the rows' first Next depends on the
// statement (prepared on it before or not) and on the kernel's timing;
// without the retry, each of the first four reads fails in one of them.
func TestSourceReadsAfterPostgresRestart(t *testing.T) {
	n := newShipNode(t, pg.Database(t), "node-a", nil)
	start := time.Now().Add(-time.Hour).Truncate(time.Hour)
	n.record(t, 50, start, time.Second)
	n.drain(t)
	src, err := cluster.NewSourceUnpinged(n.cluster, cluster.SourceOptions{Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	reads := map[string]func() error{
		"records": func() error {
			page, err := src.Records(ctxFor(t, 30*time.Second), metrics.RecordQuery{From: start, Limit: 100})
			if err == nil && len(page.Records) != 50 {
				t.Errorf("records: a page of %d, want 50", len(page.Records))
			}
			return err
		},
		"cells": func() error {
			var count uint64
			err := src.ScanCells(ctxFor(t, 30*time.Second), metrics.CellQuery{Interval: metrics.Hourly, Dimension: metrics.DimTotal},
				func(_ string, _ time.Time, c *metrics.Cell) error { count += c.Count; return nil })
			if err == nil && count != 50 {
				t.Errorf("cells: %d requests, want 50", count)
			}
			return err
		},
		"distinct routes": func() error { // one row: QueryRow
			n, err := src.CountValues(ctxFor(t, 30*time.Second), metrics.DimRoute,
				[]metrics.CellQuery{{Interval: metrics.Hourly, Dimension: metrics.DimRoute, From: start, To: start.Add(time.Hour)}})
			if err == nil && n == 0 {
				t.Errorf("distinct routes: 0, want some")
			}
			return err
		},
	}
	for name, read := range reads {
		if err := read(); err != nil {
			t.Fatalf("%s before the restart: %v", name, err)
		}
	}
	within(t, 30*time.Second, "the source's pool full", func() bool { return src.OpenConns() == cluster.SourceMaxConns })

	startPostgres := pg.StopForTest(t)
	startPostgres()
	// More reads than pooled connections, each kind in turn.
	for i := range 2 * cluster.SourceMaxConns {
		for _, name := range []string{"distinct routes", "records", "cells"} {
			if err := reads[name](); err != nil {
				t.Errorf("%s, read %d after the restart: %v", name, i+1, err)
			}
		}
	}
}
