package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
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

// After PostgreSQL restarts, every connection the Cluster's own pool had
// is dead; admin key writes (a transaction each), dashboard sessions (an
// upsert, a read, a delete), heartbeats and key-change reads each run
// again on a fresh connection and succeed, instead of failing (503) once
// per dead connection. The pool never pings before use, as in
// TestSourceReadsAfterPostgresRestart; without the retry, the first
// calls after the restart fail.
func TestClusterWritesAfterPostgresRestart(t *testing.T) {
	url := pg.Database(t)
	c, err := cluster.OpenUnpinged(ctxFor(t, 30*time.Second), cluster.Options{URL: url, InstanceID: "node-a",
		KeySecretCheck: keys.SecretCheck([]byte(testSecret))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	svc := keysOver(t, c)
	k, _, err := svc.Create(keys.CreateParams{Name: "before"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func(i int) error
	}{
		{"create a key", func(i int) error {
			_, _, err := svc.Create(keys.CreateParams{Name: fmt.Sprint("after-", i)}, "admin")
			return err
		}},
		{"rename a key", func(i int) error {
			_, err := svc.Update(k.ID, keys.Patch{Name: ptr(fmt.Sprint("renamed-", i))}, "admin")
			return err
		}},
		{"save a session", func(i int) error {
			return c.SaveSession(ctxFor(t, 30*time.Second), [32]byte{byte(i)}, "csrf", time.Now().Add(time.Hour))
		}},
		{"load a session", func(i int) error {
			_, _, ok, err := c.LoadSession(ctxFor(t, 30*time.Second), [32]byte{byte(i)})
			if err == nil && !ok {
				return fmt.Errorf("session %d not found", i)
			}
			return err
		}},
		{"end a session", func(i int) error { return c.EndSession(ctxFor(t, 30*time.Second), [32]byte{byte(i)}) }},
		{"heartbeat", func(int) error {
			return c.Beat(ctxFor(t, 30*time.Second), "node-a", "test", time.Now(), 0)
		}},
		{"read key changes", func(int) error {
			_, err := c.KeyChanges(ctxFor(t, 30*time.Second), 0, 10)
			return err
		}},
	}
	for _, tc := range calls {
		if err := tc.call(0); err != nil {
			t.Fatalf("%s before the restart: %v", tc.name, err)
		}
	}
	within(t, 30*time.Second, "the cluster's pool full", func() bool { return c.OpenConns() == cluster.ClusterMaxConns })

	startPostgres := pg.StopForTest(t)
	startPostgres()
	// More calls than pooled connections, each kind in turn.
	for i := range 2 * cluster.ClusterMaxConns {
		for _, tc := range calls {
			if err := tc.call(i + 1); err != nil {
				t.Errorf("%s, call %d after the restart: %v", tc.name, i+1, err)
			}
		}
	}
	// Every call gave its connection back, retried or not.
	if n := c.Pool().Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections still acquired after every call returned", n)
	}
}
