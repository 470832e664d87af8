package demo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/metrics"
	"github.com/apiwarden/apiwarden/store"
)

// prepareDemo runs Prepare with the demo's configuration on a private
// data directory.
func prepareDemo(t *testing.T, days int, now time.Time) (Prepared, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := Config(ConfigOptions{AdminListen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", DataDir: dir, AdminToken: "test-token"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(context.Background(), cfg, PrepareOptions{
		BackfillDays: days, Seed: 7, Location: time.UTC, Now: func() time.Time { return now },
		Scale: 0.25, // a quarter of the traffic: the race detector is slow
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, dir
}

// The rollups count exactly what Backfill generated, by route, key and
// decision, and the raw records are all there.
func TestBackfillRollupsMatchWhatWasGenerated(t *testing.T) {
	now := time.Date(2026, 11, 27, 21, 30, 0, 0, time.UTC)
	p, dir := prepareDemo(t, 2, now)
	res := p.Backfill
	if res.Records < 15000 {
		t.Fatalf("two days of history hold only %d records", res.Records)
	}
	t.Logf("2 days: %d records in %v; decisions %v; statuses %v", res.Records, p.BackfillTook, res.ByDecision, res.ByStatus)

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rd := metrics.NewReader(st)
	ctx := context.Background()
	for _, iv := range []metrics.Interval{metrics.Hourly, metrics.Daily} {
		sum, err := rd.Sum(ctx, metrics.CellQuery{Interval: iv, Dimension: metrics.DimTotal})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Count != uint64(res.Records) {
			t.Errorf("%v rollups count %d requests, backfill wrote %d", iv, sum.Count, res.Records)
		}
		auth := res.ByDecision["MISSING_KEY"] + res.ByDecision["NOT_FOUND"] + res.ByDecision["REVOKED"] + res.ByDecision["INSUFFICIENT_SCOPE"]
		if sum.AuthFailures != uint64(auth) {
			t.Errorf("%v rollups count %d auth failures, backfill wrote %d", iv, sum.AuthFailures, auth)
		}
		fives := 0
		for status, n := range res.ByStatus {
			if status >= 500 {
				fives += n
			}
		}
		if sum.Status5xx != uint64(fives) {
			t.Errorf("%v rollups count %d 5xx, backfill wrote %d", iv, sum.Status5xx, fives)
		}
	}
	// Every kind of decision the history should show.
	for _, code := range []string{"VALID", "MISSING_KEY", "NOT_FOUND", "REVOKED", "INSUFFICIENT_SCOPE", ""} {
		if code == "" {
			continue
		}
		if res.ByDecision[code] == 0 {
			t.Errorf("no %s decisions in the history", code)
		}
	}

	routes, err := rd.Totals(ctx, metrics.CellQuery{Interval: metrics.Hourly, Dimension: metrics.DimRoute, AllValues: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]uint64{}
	for _, r := range routes {
		seen[r.Value] = r.Cell.Count
	}
	for _, want := range []string{"/api/guests/*", "/api/forms/*", "/api/timeline/*", "/api/clients/*", "/api/photos/upload", "/api/public/*", "/healthz"} {
		if seen[want] == 0 {
			t.Errorf("route %s has no history; routes: %v", want, seen)
		}
	}

	// Every keyed persona's key has history, and keys are dated to its start.
	byKey, err := rd.Totals(ctx, metrics.CellQuery{Interval: metrics.Daily, Dimension: metrics.DimKey, AllValues: true})
	if err != nil {
		t.Fatal(err)
	}
	keyCounts := map[string]uint64{}
	for _, v := range byKey {
		keyCounts[v.Value] = v.Cell.Count
	}
	for _, k := range p.Keys {
		if keyCounts[k.Key.ID] == 0 {
			t.Errorf("key of %s has no history", k.Role)
		}
		if want := now.Add(-48 * time.Hour); !k.Key.CreatedAt.Equal(want) {
			t.Errorf("key of %s created at %v, want the start of the history %v", k.Role, k.Key.CreatedAt, want)
		}
	}

	raw := 0
	q := metrics.RecordQuery{Limit: metrics.MaxRecordLimit}
	for {
		page, err := rd.Records(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		raw += len(page.Records)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if raw != res.Records {
		t.Errorf("%d raw records stored, backfill wrote %d", raw, res.Records)
	}
}

// The history follows the daily rhythm: the busiest hour of a day has
// several times the traffic of the quietest.
func TestBackfillFollowsTheRhythm(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC) // a Thursday
	p, dir := prepareDemo(t, 1, now)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	series, err := metrics.NewReader(st).Series(context.Background(), metrics.CellQuery{Interval: metrics.Hourly, Dimension: metrics.DimTotal})
	if err != nil {
		t.Fatal(err)
	}
	byHour := map[int]uint64{}
	for _, pt := range series[0].Points {
		byHour[pt.Start.Hour()] = pt.Cell.Count
	}
	// 03:00 is the quietest hour, 19:00 one of the busiest (3.3 times
	// as busy); the steady health checks narrow the ratio.
	if quiet, busy := byHour[3], byHour[19]; busy < 2*quiet {
		t.Errorf("19:00 has %d requests, 03:00 %d: want a daily rhythm", busy, quiet)
	}
	if p.Backfill.Records == 0 {
		t.Fatal("no history")
	}
}

// A second run on the same data directory finds the keys, gives them new
// secrets (the old ones stop working) and writes no second history.
func TestPrepareReusesKeys(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	cfg, err := Config(ConfigOptions{AdminListen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", DataDir: dir, AdminToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	opts := PrepareOptions{BackfillDays: 1, Seed: 3, Location: time.UTC, Scale: 0.25, Now: func() time.Time { return now }}
	first, err := Prepare(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Prepare(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Reused || !second.Reused {
		t.Fatalf("reused: first %v, second %v", first.Reused, second.Reused)
	}
	if second.Backfill.Records != 0 {
		t.Errorf("second run wrote %d records of history again", second.Backfill.Records)
	}
	if len(first.Keys) != len(second.Keys) {
		t.Fatalf("%d keys, then %d", len(first.Keys), len(second.Keys))
	}
	for i := range first.Keys {
		a, b := first.Keys[i], second.Keys[i]
		if a.Key.ID != b.Key.ID {
			t.Errorf("%s: key %s became %s", a.Role, a.Key.ID, b.Key.ID)
		}
		switch {
		case a.Key.Status == keys.StatusRevoked:
			if b.Secret != "" {
				t.Errorf("%s: a revoked key got a secret", a.Role)
			}
		case b.Secret == "" || b.Secret == a.Secret:
			t.Errorf("%s: not given a new secret", a.Role)
		}
	}
}

// Prepare resolves the key secret as the app does: a configured one
// shorter than the app accepts is refused before the data file is opened.
func TestPrepareRefusesAShortKeySecret(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Config(ConfigOptions{AdminListen: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", DataDir: dir, AdminToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Security.KeySecret = "too-short"
	if _, err := Prepare(context.Background(), cfg, PrepareOptions{}); !errors.Is(err, keys.ErrSecretTooShort) {
		t.Fatalf("got %v, want ErrSecretTooShort", err)
	}
}
