package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store"
)

// singleInstance is the keys of a single apiwarden, made through the key
// service on a real data file, which is then closed as a stopped server's.
type singleInstance struct {
	path string // the data file
	// secrets of the keys, by name: plain, updated, rotated (the new
	// secret), graced (the rotated key's old one, in its grace period),
	// revoked.
	secrets map[string]string
	ids     map[string]string
	events  int // audit events of kinds the cluster shares
}

// openSingle opens a new data file with a key service of its own, as a
// single instance (no system of record) has; close closes both.
func openSingle(t testing.TB) (path string, svc *keys.Service, close func()) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	svc, err = keys.New(keys.Options{Store: st, Secret: []byte(testSecret), Policy: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, store.FileName), svc, func() {
		svc.Close()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func newSingleInstance(t *testing.T) *singleInstance {
	t.Helper()
	path, svc, closeFile := openSingle(t)
	si := &singleInstance{path: path, secrets: map[string]string{}, ids: map[string]string{}}
	create := func(name string) string {
		k, secret, err := svc.Create(keys.CreateParams{Name: name, OwnerID: "org_" + name, Scopes: []string{"read"}}, "admin")
		if err != nil {
			t.Fatal(err)
		}
		si.secrets[name], si.ids[name] = secret, k.ID
		si.events++
		return k.ID
	}
	create("plain")
	name := "renamed"
	if _, err := svc.Update(create("updated"), keys.Patch{Name: &name}, "admin"); err != nil {
		t.Fatal(err)
	}
	oldSecret := si.secrets[func() string { create("rotated"); return "rotated" }()]
	grace := time.Hour
	_, newSecret, err := svc.Rotate(si.ids["rotated"], &grace, "admin")
	if err != nil {
		t.Fatal(err)
	}
	si.secrets["rotated"], si.secrets["graced"] = newSecret, oldSecret
	if _, err := svc.Revoke(create("revoked"), "admin", "leaked"); err != nil {
		t.Fatal(err)
	}
	si.events += 3 // updated, rotated, revoked
	// A denial, written behind: an event the cluster does not share.
	svc.RecordDenial(time.Now(), si.ids["plain"], keys.EventIPDenied, "198.51.100.7")
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	closeFile()
	return si
}

func openClusterFor(t *testing.T, url, secret string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.Open(ctxFor(t, 30*time.Second), cluster.Options{URL: url, KeySecretCheck: keys.SecretCheck([]byte(secret))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func runImport(t *testing.T, c *cluster.Cluster, path string, opts cluster.ImportOptions) cluster.ImportReport {
	t.Helper()
	report, _ := runImportProgress(t, c, path, opts)
	return report
}

// runImportProgress is runImport that also returns the progress lines.
func runImportProgress(t *testing.T, c *cluster.Cluster, path string, opts cluster.ImportOptions) (cluster.ImportReport, string) {
	t.Helper()
	src, err := store.OpenReadOnly(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var progress bytes.Buffer
	opts.Progress = &progress
	report, err := c.Import(ctxFor(t, 60*time.Second), src, opts)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, progress.String())
	}
	t.Logf("import progress:\n%s", progress.String())
	return report, progress.String()
}

// dump is the cluster's key rows, events and last sequence as text, to
// compare two states of the database byte for byte.
func dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	return dumpRows(t, pool,
		"SELECT id || ' ' || record::text || ' ' || seq || ' ' || updated_at FROM apiwarden_keys ORDER BY id",
		"SELECT seq || ' ' || key_id || ' ' || type || ' ' || actor || ' ' || at || ' ' || detail FROM apiwarden_key_events ORDER BY seq",
		"SELECT 'last_seq ' || last_seq FROM apiwarden_key_changes")
}

// dumpRows runs queries that select one text column and returns their
// rows, a line each.
func dumpRows(t *testing.T, pool *pgxpool.Pool, queries ...string) string {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	var b strings.Builder
	for _, q := range queries {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func step(t *testing.T, r cluster.ImportReport, name string) cluster.StepResult {
	t.Helper()
	for _, s := range r.Steps {
		if s.Step == name {
			return s
		}
	}
	t.Fatalf("no step %q in %+v", name, r)
	return cluster.StepResult{}
}

// Importing a single instance's data file twice: the first run copies
// every key with its hashes and its shared audit events, the second
// changes nothing in the database. Running instances verify the imported
// secrets (old ones in their grace period too) and refuse the revoked
// key, and their mirrors hold the imported audit events.
func TestImportTwiceChangesNothing(t *testing.T) {
	si := newSingleInstance(t)
	url := pg.Database(t)
	a := newInstance(t, url) // running before the import: follows it by NOTIFY
	c := openClusterFor(t, url, testSecret)

	first, progress := runImportProgress(t, c, si.path, cluster.ImportOptions{ProgressEvery: 2})
	if !strings.Contains(progress, "keys: 2/4 (imported 2, skipped 0, conflicts 0)\n") {
		t.Errorf("no progress line after 2 of 4 keys:\n%s", progress)
	}
	ks := step(t, first, "keys")
	if ks.Imported != 4 || ks.Skipped != 0 || len(ks.Conflicts) != 0 || ks.EventsImported != si.events || ks.EventsSkipped != 0 {
		t.Fatalf("first import: %+v, want 4 keys and %d events imported", ks, si.events)
	}
	if !strings.Contains(strings.Join(ks.Notes, "\n"), "1 denial audit events not imported") {
		t.Errorf("notes do not mention the denial event: %q", ks.Notes)
	}
	before := dump(t, c.Pool())

	second := runImport(t, c, si.path, cluster.ImportOptions{})
	ks = step(t, second, "keys")
	if ks.Imported != 0 || ks.Skipped != 4 || ks.EventsImported != 0 || ks.EventsSkipped != si.events {
		t.Fatalf("second import: %+v, want everything skipped", ks)
	}
	if after := dump(t, c.Pool()); after != before {
		t.Fatalf("the second import changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	b := newInstance(t, url) // started after the import: syncs at connect
	for _, in := range []*instance{a, b} {
		for _, name := range []string{"plain", "updated", "rotated", "graced"} {
			within(t, 10*time.Second, name+" verifies", func() bool { return verifies(in, si.secrets[name]) == nil })
		}
		if err := verifies(in, si.secrets["revoked"]); !errors.Is(err, keys.ErrRevoked) {
			t.Errorf("revoked key: %v, want ErrRevoked", err)
		}
		k, err := in.keys.Get(si.ids["updated"])
		if err != nil || k.Name != "renamed" {
			t.Errorf("updated key on the mirror: %+v, %v", k, err)
		}
		evs, _, err := in.keys.Events(si.ids["rotated"], "", 10)
		if err != nil || len(evs) != 2 || evs[0].Type != keys.EventRotated || evs[1].Type != keys.EventCreated {
			t.Errorf("rotated key's events on the mirror: %+v, %v", evs, err)
		}
	}
}

// A key changed in the cluster after an import is a conflict for the next
// one, left as the cluster has it; -force replaces it with the data
// file's record (with an event saying so), and a run after that skips it.
func TestImportConflictAndForce(t *testing.T) {
	si := newSingleInstance(t)
	url := pg.Database(t)
	in := newInstance(t, url)
	c := openClusterFor(t, url, testSecret)
	runImport(t, c, si.path, cluster.ImportOptions{})
	within(t, 10*time.Second, "imported key mirrored", func() bool { return verifies(in, si.secrets["plain"]) == nil })
	name := "changed in the cluster"
	if _, err := in.keys.Update(si.ids["plain"], keys.Patch{Name: &name}, "admin"); err != nil {
		t.Fatal(err)
	}

	ks := step(t, runImport(t, c, si.path, cluster.ImportOptions{}), "keys")
	if fmt.Sprint(ks.Conflicts) != fmt.Sprint([]string{si.ids["plain"]}) || ks.Skipped != 3 || ks.Imported != 0 {
		t.Fatalf("import after a change in the cluster: %+v, want one conflict", ks)
	}
	if k, _ := in.keys.Get(si.ids["plain"]); k.Name != name {
		t.Fatalf("the conflicting key was changed: name %q", k.Name)
	}

	ks = step(t, runImport(t, c, si.path, cluster.ImportOptions{Force: true}), "keys")
	if ks.Replaced != 1 || len(ks.Conflicts) != 0 || ks.Skipped != 3 {
		t.Fatalf("forced import: %+v, want one key replaced", ks)
	}
	within(t, 10*time.Second, "replaced record mirrored", func() bool {
		k, _ := in.keys.Get(si.ids["plain"])
		return k.Name == "plain"
	})
	evs, _, _ := in.keys.Events(si.ids["plain"], "", 10)
	if len(evs) == 0 || evs[0].Type != keys.EventUpdated || !strings.Contains(evs[0].Detail, "-force") {
		t.Errorf("newest event of the replaced key: %+v, want the import's update", evs)
	}

	ks = step(t, runImport(t, c, si.path, cluster.ImportOptions{}), "keys")
	if ks.Skipped != 4 || len(ks.Conflicts) != 0 || ks.Replaced != 0 {
		t.Fatalf("import after the forced one: %+v, want everything skipped", ks)
	}
}

// A dry run reports what an import would do and writes nothing.
func TestImportDryRunWritesNothing(t *testing.T) {
	si := newSingleInstance(t)
	c := openClusterFor(t, pg.Database(t), testSecret)
	before := dump(t, c.Pool())
	report := runImport(t, c, si.path, cluster.ImportOptions{DryRun: true})
	if ks := step(t, report, "keys"); ks.Imported != 4 || ks.EventsImported != si.events {
		t.Fatalf("dry run: %+v, want 4 keys and %d events to import", ks, si.events)
	}
	if after := dump(t, c.Pool()); after != before {
		t.Fatalf("a dry run wrote:\n%s", after)
	}
}

// A data file whose keys were hashed with another secret is refused
// before anything is written: none of its keys would verify.
func TestImportRefusesAnotherSecret(t *testing.T) {
	si := newSingleInstance(t)
	c := openClusterFor(t, pg.Database(t), "another-secret-0123456789abcdef")
	src, err := store.OpenReadOnly(si.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = c.Import(context.Background(), src, cluster.ImportOptions{})
	if !errors.Is(err, cluster.ErrImportSecret) {
		t.Fatalf("import with another secret: %v, want ErrImportSecret", err)
	}
	if d := dump(t, c.Pool()); d != "last_seq 0\n" {
		t.Fatalf("refused import wrote:\n%s", d)
	}
}
