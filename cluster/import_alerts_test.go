package cluster_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/store"
)

// spikeRules are three error-spike rules on the global error rate, at
// thresholds 5, 10 and 15 %.
func spikeRules() []alerting.Rule {
	var rules []alerting.Rule
	for _, r := range []struct {
		name      string
		threshold float64
	}{{"spike-low", 0.05}, {"spike-mid", 0.10}, {"spike-high", 0.15}} {
		rule := errorSpike()
		rule.Name, rule.Threshold = r.name, r.threshold
		rules = append(rules, rule)
	}
	return rules
}

// alertFile is a single instance's data file with alerts made by a real
// evaluator over it: spike-low firing, spike-mid firing and acknowledged
// by dana, spike-high resolved, each with its history (8 transitions).
type alertFile struct {
	path        string
	ids         map[string]string // alert ids by rule
	transitions int
	seq         uint64 // the highest alert sequence number handed out
}

func newAlertFile(t *testing.T) *alertFile {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	traffic := &sharedTraffic{}
	now := alertT0
	ev, err := alerting.New(alerting.Options{Store: st, Rules: spikeRules(), Traffic: traffic,
		Now: func() time.Time { return now }, RepeatInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	traffic.set(100, 20)
	if err := ev.EvalAt(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	af := &alertFile{path: filepath.Join(dir, store.FileName), ids: map[string]string{}}
	list, err := ev.List(alerting.Query{})
	if err != nil || len(list) != 3 {
		t.Fatalf("single instance: %d alerts (%v), want 3 firing", len(list), err)
	}
	for _, a := range list {
		af.ids[a.Rule] = a.ID
	}
	now = now.Add(10 * time.Second)
	if _, err := ev.Acknowledge(af.ids["spike-mid"], "dana", "looking"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	traffic.set(100, 12)
	if err := ev.EvalAt(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	if a, err := ev.Get(af.ids["spike-high"]); err != nil || a.State != alerting.StateResolved {
		t.Fatalf("spike-high: %s (%v), want resolved", a.State, err)
	}
	af.transitions = 2 + 3 + 3 // pending, firing; + acknowledged; + resolved
	af.seq = 3
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return af
}

// fileAlerts reads the alerts and their history from the data file.
func fileAlerts(t *testing.T, path string) (map[string]alerting.Alert, map[string][]alerting.Transition) {
	t.Helper()
	src, err := store.OpenReadOnly(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return readAlerts(t, alerting.NewStoreState(src))
}

// readAlerts reads every alert of s, by id, and its history.
func readAlerts(t *testing.T, s alerting.StateStore) (map[string]alerting.Alert, map[string][]alerting.Transition) {
	t.Helper()
	alerts, history := map[string]alerting.Alert{}, map[string][]alerting.Transition{}
	err := s.View(context.Background(), func(r alerting.StateReader) error {
		list, err := r.List(alerting.Query{})
		if err != nil {
			return err
		}
		for _, a := range list {
			alerts[a.ID] = a
			if history[a.ID], err = r.History(&a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return alerts, history
}

// asJSON is v as JSON, to compare alerts and transitions field by field.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dumpAlerts is the cluster's alert rows, history rows and alert id
// sequence as text, to compare two states of the database byte for byte.
func dumpAlerts(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	return dumpRows(t, pool,
		"SELECT id || ' ' || fingerprint || ' ' || state || ' ' || active_at || ' ' || coalesce(resolved_at::text, '-') || ' ' || alert::text FROM apiwarden_alerts ORDER BY id",
		"SELECT seq || ' ' || alert_id || ' ' || at || ' ' || transition::text FROM apiwarden_alert_history ORDER BY seq",
		"SELECT 'alert_seq ' || last_value || ' ' || is_called FROM apiwarden_alert_seq")
}

// Importing a single instance's alerts twice: the first run copies every
// alert (firing, acknowledged, resolved) with its history as the data
// file has them, the second changes nothing. The cluster's evaluator
// then carries the imported open alerts on (no second alert for their
// rules) and gives the next alert an id above every imported one.
func TestImportAlertsTwiceChangesNothing(t *testing.T) {
	af := newAlertFile(t)
	url := pg.Database(t)
	c := openClusterFor(t, url, testSecret)

	first, progress := runImportProgress(t, c, af.path, cluster.ImportOptions{ProgressEvery: 2})
	as := step(t, first, "alerts")
	if as.Imported != 3 || as.Skipped != 0 || len(as.Conflicts) != 0 || as.EventsImported != af.transitions || as.EventsSkipped != 0 {
		t.Fatalf("first import: %+v, want 3 alerts and %d transitions imported", as, af.transitions)
	}
	for _, line := range []string{
		"alerts: 3 in the data file (2 open, 1 resolved), 8 history transitions\n",
		"alerts: 2/3 (imported 2, skipped 0, conflicts 0)\n",
		"alerts: id sequence raised to 3, the data file's\n",
	} {
		if !strings.Contains(progress, line) {
			t.Errorf("progress lacks %q:\n%s", line, progress)
		}
	}
	if names := []string{first.Steps[0].Step, first.Steps[1].Step, first.Steps[2].Step}; strings.Join(names, ",") != "keys,alerts,buckets" {
		t.Errorf("steps %v, want keys, alerts, buckets", names)
	}
	wantAlerts, wantHistory := fileAlerts(t, af.path)
	gotAlerts, gotHistory := readAlerts(t, c.AlertStore())
	if asJSON(t, gotAlerts) != asJSON(t, wantAlerts) {
		t.Fatalf("cluster's alerts:\n%s\nwant the data file's:\n%s", asJSON(t, gotAlerts), asJSON(t, wantAlerts))
	}
	if asJSON(t, gotHistory) != asJSON(t, wantHistory) {
		t.Fatalf("cluster's history:\n%s\nwant the data file's:\n%s", asJSON(t, gotHistory), asJSON(t, wantHistory))
	}
	if ack := gotAlerts[af.ids["spike-mid"]].Acknowledgement; ack == nil || ack.By != "dana" {
		t.Errorf("spike-mid's acknowledgement: %+v, want dana's", ack)
	}
	before := dumpAlerts(t, c.Pool())
	if !strings.Contains(before, "alert_seq 3 true\n") {
		t.Errorf("alert id sequence not at the data file's 3:\n%s", before)
	}

	second, progress := runImportProgress(t, c, af.path, cluster.ImportOptions{})
	as = step(t, second, "alerts")
	if as.Imported != 0 || as.Skipped != 3 || as.EventsImported != 0 || as.EventsSkipped != af.transitions {
		t.Fatalf("second import: %+v, want everything skipped", as)
	}
	if strings.Contains(progress, "id sequence raised") {
		t.Errorf("second import raised the sequence again:\n%s", progress)
	}
	if after := dumpAlerts(t, c.Pool()); after != before {
		t.Fatalf("the second import changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The cluster's leader, with the same rules and one more, on traffic
	// that still trips spike-low and spike-mid.
	traffic := &sharedTraffic{}
	traffic.set(100, 20)
	node := newAlertNode(t, url, traffic, true, func(o *alerting.Options) {
		o.Rules = append(spikeRules(), errorSpike())
	})
	node.eval(t, alertT0.Add(10*time.Minute))
	list, err := node.ev.List(alerting.Query{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range list {
		if _, imported := wantAlerts[a.ID]; imported {
			seen[a.ID] = true
			continue
		}
		if a.Rule == "spike-low" || a.Rule == "spike-mid" {
			t.Errorf("the leader opened %s for %s, which the import holds open", a.ID, a.Rule)
		}
		if n := idSeq(t, a.ID); n <= af.seq {
			t.Errorf("new alert %s (%s) reuses a sequence number at or below the imported %d", a.ID, a.Rule, af.seq)
		}
	}
	if len(seen) != 3 || len(list) != 5 {
		t.Fatalf("after a pass the cluster lists %d alerts (%d imported), want the 3 imported and new ones for spike-high and error-spike", len(list), len(seen))
	}
	if a, _ := node.ev.Get(af.ids["spike-mid"]); a.State != alerting.StateFiring || a.Acknowledgement == nil {
		t.Errorf("imported spike-mid after the leader's pass: %s, ack %+v; want firing, acknowledged", a.State, a.Acknowledgement)
	}
}

// idSeq is the sequence number of an alert id (fingerprint-n).
func idSeq(t *testing.T, id string) uint64 {
	t.Helper()
	var n uint64
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		t.Fatalf("alert id %q has no sequence number", id)
	}
	if err := json.Unmarshal([]byte(id[i+1:]), &n); err != nil {
		t.Fatalf("alert id %q: %v", id, err)
	}
	return n
}

// An open alert whose rule and subject the cluster already has open is a
// conflict, left as the cluster has it (a dry run says so and writes
// nothing); -force imports it and resolves the cluster's one with a
// transition saying why; a run after that skips everything.
func TestImportAlertsConflictAndForce(t *testing.T) {
	af := newAlertFile(t)
	url := pg.Database(t)
	c := openClusterFor(t, url, testSecret)
	traffic := &sharedTraffic{}
	traffic.set(100, 20)
	node := newAlertNode(t, url, traffic, true, func(o *alerting.Options) { o.Rules = spikeRules()[1:2] })
	node.eval(t, alertT0.Add(-time.Hour))
	rival := node.only(t)
	mid := af.ids["spike-mid"]

	before := dumpAlerts(t, c.Pool())
	as := step(t, runImport(t, c, af.path, cluster.ImportOptions{DryRun: true}), "alerts")
	if as.Imported != 2 || len(as.Conflicts) != 1 || as.EventsImported != 5 {
		t.Fatalf("dry run: %+v, want 2 alerts (5 transitions) to import and one conflict", as)
	}
	if after := dumpAlerts(t, c.Pool()); after != before {
		t.Fatalf("a dry run wrote:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	as = step(t, runImport(t, c, af.path, cluster.ImportOptions{}), "alerts")
	want := mid + " (its rule and subject are open in the cluster as " + rival.ID + ")"
	if as.Imported != 2 || len(as.Conflicts) != 1 || as.Conflicts[0] != want {
		t.Fatalf("import: %+v, want 2 imported and the conflict %q", as, want)
	}
	if a, err := node.ev.Get(rival.ID); err != nil || a.State != alerting.StateFiring {
		t.Fatalf("the cluster's alert after the conflict: %s (%v), want firing as it was", a.State, err)
	}
	if _, err := node.ev.Get(mid); err == nil {
		t.Fatalf("the conflicting alert %s was imported", mid)
	}

	as = step(t, runImport(t, c, af.path, cluster.ImportOptions{Force: true}), "alerts")
	if as.Replaced != 1 || as.Skipped != 2 || len(as.Conflicts) != 0 || as.EventsImported != 3 {
		t.Fatalf("forced import: %+v, want spike-mid and its 3 transitions imported in place of %s", as, rival.ID)
	}
	resolved, err := node.ev.Get(rival.ID)
	if err != nil || resolved.State != alerting.StateResolved || resolved.ResolvedBy != "cluster import" {
		t.Fatalf("the replaced alert: %+v (%v), want resolved by the import", resolved, err)
	}
	h, err := node.ev.History(rival.ID)
	if err != nil || len(h) == 0 || h[len(h)-1].To != alerting.StateResolved || !strings.Contains(h[len(h)-1].Note, mid) {
		t.Fatalf("the replaced alert's history: %+v (%v), want a resolve naming %s last", h, err, mid)
	}
	if a, err := node.ev.Get(mid); err != nil || a.Acknowledgement == nil {
		t.Fatalf("the data file's spike-mid: %+v (%v), want imported with its acknowledgement", a, err)
	}

	before = dumpAlerts(t, c.Pool())
	as = step(t, runImport(t, c, af.path, cluster.ImportOptions{}), "alerts")
	if as.Skipped != 3 || len(as.Conflicts) != 0 || as.Replaced != 0 || as.Imported != 0 {
		t.Fatalf("import after the forced one: %+v, want everything skipped", as)
	}
	if after := dumpAlerts(t, c.Pool()); after != before {
		t.Fatalf("the run after the forced one changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
