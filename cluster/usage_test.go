package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

// sharedKey creates a key on in and waits until every other instance's
// mirror has it.
func sharedKey(t *testing.T, in *instance, others ...*instance) (keys.Key, string) {
	t.Helper()
	k, secret, err := in.keys.Create(keys.CreateParams{Name: "usage", OwnerID: "org_1", Scopes: []string{"read"}}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		within(t, 10*time.Second, "key mirrored", func() bool { return verifies(o, secret) == nil })
	}
	return k, secret
}

// flush runs a write-behind flush of every instance, in order.
func flush(t *testing.T, ins ...*instance) {
	t.Helper()
	for _, in := range ins {
		if err := in.keys.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

func lastUsed(t *testing.T, in *instance, id string) time.Time {
	t.Helper()
	k, err := in.keys.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if k.LastUsedAt == nil {
		return time.Time{}
	}
	return *k.LastUsedAt
}

// A use on A shows on B after A's flush and B's next one; the latest use
// wins whichever instance saw it, and an earlier use never moves the time
// back.
func TestLastUsedLatestWins(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	k, secret := sharedKey(t, a, b)
	t0 := time.Now().UTC().Truncate(time.Second)
	for _, step := range []struct {
		on   *instance
		at   time.Time
		want time.Time
	}{
		{a, t0.Add(2 * time.Second), t0.Add(2 * time.Second)},
		{b, t0.Add(1 * time.Second), t0.Add(2 * time.Second)}, // earlier: A's stays
		{b, t0.Add(5 * time.Second), t0.Add(5 * time.Second)},
		{a, t0.Add(4 * time.Second), t0.Add(5 * time.Second)},
	} {
		if _, err := step.on.keys.Verify(step.at, secret); err != nil {
			t.Fatal(err)
		}
		flush(t, step.on)
		flush(t, a, b)
		for name, in := range map[string]*instance{"A": a, "B": b} {
			if got := lastUsed(t, in, k.ID); !got.Equal(step.want) {
				t.Fatalf("after a use at %s: %s shows last_used_at %s, want %s", step.at, name, got, step.want)
			}
		}
	}
	var seqBefore int64
	pool := newPool(t, url)
	ctx := ctxFor(t, 10*time.Second)
	if err := pool.QueryRow(ctx, "SELECT last_seq FROM apiwarden_key_changes").Scan(&seqBefore); err != nil || seqBefore != 1 {
		t.Fatalf("key change sequence %d (%v), want 1: last-used must not count as a key change", seqBefore, err)
	}
}

// Denials on A and on B are listed on both, each event once with its
// exact count, next to the key's change events.
func TestDenialEventsSharedExactly(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	k, _ := sharedKey(t, a, b)
	now := time.Now()
	for range 3 {
		a.keys.RecordDenial(now, k.ID, keys.EventIPDenied, "from 192.0.2.1")
	}
	for range 2 {
		b.keys.RecordDenial(now, k.ID, keys.EventIPDenied, "from 192.0.2.2")
	}
	b.keys.RecordDenial(now, k.ID, keys.EventScopeDenied, "write")
	flush(t, a, b, a, b)
	want := []string{"created 0", "ip_denied 2 from 192.0.2.2", "ip_denied 3 from 192.0.2.1", "scope_denied 1 write"}
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if got := eventSummary(t, in, k.ID); !slices.Equal(got, want) {
			t.Fatalf("%s lists %q, want %q", name, got, want)
		}
	}
}

// eventSummary lists a key's events as "type count detail", sorted.
func eventSummary(t *testing.T, in *instance, id string) []string {
	t.Helper()
	events, _, err := in.keys.Events(id, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %d %s", ev.Type, ev.Count, ev.Detail)))
	}
	slices.Sort(out)
	return out
}

// With PostgreSQL down, flushes keep the usage they could not merge; once
// it is back, the next flush merges all of it, once.
func TestUsageKeptWhilePostgresDown(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	k, secret := sharedKey(t, a, b)
	used := time.Now().UTC().Truncate(time.Second).Add(time.Second)

	startPostgres := pg.StopForTest(t)
	if _, err := a.keys.Verify(used, secret); err != nil {
		t.Fatal(err)
	}
	a.keys.RecordDenial(used, k.ID, keys.EventOriginDenied, "https://evil.example")
	a.keys.RecordDenial(used, k.ID, keys.EventOriginDenied, "https://evil.example")
	flush(t, a) // fails to merge: kept
	a.keys.RecordDenial(used, k.ID, keys.EventScopeDenied, "admin")
	flush(t, a) // a second flush while down: kept as well
	if got := lastUsed(t, a, k.ID); !got.Equal(used) {
		t.Fatalf("A's own mirror while down: last_used_at %s, want %s", got, used)
	}

	startPostgres()
	within(t, 20*time.Second, "PostgreSQL back", func() bool { return a.cluster.Healthy() && b.cluster.Healthy() })
	flush(t, a, b)
	want := []string{"created 0", "origin_denied 2 https://evil.example", "scope_denied 1 admin"}
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if got := eventSummary(t, in, k.ID); !slices.Equal(got, want) {
			t.Fatalf("%s lists %q, want %q", name, got, want)
		}
		if got := lastUsed(t, in, k.ID); !got.Equal(used) {
			t.Fatalf("%s: last_used_at %s, want %s", name, got, used)
		}
	}
	flush(t, a, b, a, b)
	if got := eventSummary(t, b, k.ID); !slices.Equal(got, want) {
		t.Fatalf("more flushes: B lists %q, want %q", got, want)
	}
}

// lostConfirmation is the cluster with a network that drops the answer of
// the first merge: PostgreSQL commits it, the caller sees a failure.
type lostConfirmation struct {
	*cluster.Cluster
	dropped bool
}

func (l *lostConfirmation) MergeUsage(ctx context.Context, batch keys.UsageBatch) error {
	if err := l.Cluster.MergeUsage(ctx, batch); err != nil || l.dropped {
		return err
	}
	l.dropped = true
	return fmt.Errorf("%w: connection reset before the commit was confirmed", keys.ErrUnavailable)
}

// A merge retried after its commit went unconfirmed adds nothing twice.
func TestRetriedMergeCountsOnce(t *testing.T) {
	url := pg.Database(t)
	b := newInstance(t, url)
	ctx := ctxFor(t, 30*time.Second)
	c, err := cluster.Open(ctx, cluster.Options{URL: url, InstanceID: "A", KeySecretCheck: keys.SecretCheck([]byte(testSecret))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	flaky := &lostConfirmation{Cluster: c}
	a, err := keys.New(keys.Options{Store: storetest.MustOpen(t), Secret: []byte(testSecret), Policy: testPolicy, Records: flaky})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	k, _, err := a.Create(keys.CreateParams{Name: "flaky"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for range 7 {
		a.RecordDenial(now, k.ID, keys.EventIPDenied, "from 192.0.2.7")
	}
	for range 3 {
		if err := a.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if !flaky.dropped {
		t.Fatal("the first merge was not made")
	}
	within(t, 10*time.Second, "key mirrored on B", func() bool { _, err := b.keys.Get(k.ID); return err == nil })
	flush(t, b)
	want := []string{"created 0", "ip_denied 7 from 192.0.2.7"}
	if got := eventSummary(t, b, k.ID); !slices.Equal(got, want) {
		t.Fatalf("B lists %q, want %q", got, want)
	}
	var rows, count int
	if err := c.Pool().QueryRow(ctx, "SELECT count(*), coalesce(sum(count), 0) FROM apiwarden_key_denials").Scan(&rows, &count); err != nil || rows != 1 || count != 7 {
		t.Fatalf("PostgreSQL has %d denial rows counting %d (%v), want 1 counting 7", rows, count, err)
	}
}

// Merging one batch twice inserts its events once and takes one usage
// sequence; an unknown key's usage is skipped.
func TestMergeUsageIdempotent(t *testing.T) {
	url := pg.Database(t)
	a := newInstance(t, url)
	k, _ := sharedKey(t, a)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	batch := keys.UsageBatch{
		LastUsed: map[string]time.Time{k.ID: at, "key_unknown": at},
		Events: []keys.SharedEvent{
			{Origin: 42, FlushSeq: 1, Event: keys.Event{KeyID: k.ID, Type: keys.EventIPDenied, Actor: "system", At: at, Count: 5}},
			{Origin: 42, FlushSeq: 1, Event: keys.Event{KeyID: "key_unknown", Type: keys.EventIPDenied, Actor: "system", At: at, Count: 1}},
		},
	}
	ctx := ctxFor(t, 10*time.Second)
	for range 2 {
		if err := a.cluster.MergeUsage(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := a.cluster.UsageChanges(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Last != 1 || ch.Seq != 1 || len(ch.Events) != 1 || ch.Events[0].Count != 5 || !ch.Events[0].At.Equal(at) ||
		len(ch.LastUsed) != 1 || !ch.LastUsed[k.ID].Equal(at) {
		t.Fatalf("changes %+v, want one merge with the key's use and one event counting 5", ch)
	}
	if again, err := a.cluster.UsageChanges(ctx, 1, 100); err != nil || again.Seq != 1 || len(again.Events) != 0 || len(again.LastUsed) != 0 {
		t.Fatalf("changes after 1: %+v (%v), want none", again, err)
	}
}

// While PostgreSQL cannot be reached, at most 10,000 denial events wait
// for it; the rest are counted as dropped.
func TestUsageOutboxBounded(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	c, err := cluster.Open(ctx, cluster.Options{URL: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	svc := keysOver(t, c)
	now := time.Now()
	for round, n := range []int{6_000, 4_000, 7} {
		for i := range n {
			svc.RecordDenial(now, fmt.Sprintf("key_%d_%d", round, i), keys.EventIPDenied, "")
		}
		if err := svc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if got := svc.UsageDropped(); got != 7 {
		t.Fatalf("dropped %d, want 7", got)
	}
}

// expiringKey creates on a a key that expires in an hour, and waits until
// b's mirror has it.
func expiringKey(t *testing.T, a, b *instance) (keys.Key, string, time.Time) {
	t.Helper()
	expires := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	k, secret, err := a.keys.Create(keys.CreateParams{Name: "short", ExpiresAt: &expires}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "key mirrored on B", func() bool { return verifies(b, secret) == nil })
	return k, secret, expires
}

// moveExpiry sets key id's expiry to at on a and waits until b's mirror
// has it.
func moveExpiry(t *testing.T, a, b *instance, id string, at time.Time) {
	t.Helper()
	if _, err := a.keys.Update(id, keys.Patch{ExpiresAt: keys.NullableTime{Set: true, Time: &at}}, "admin"); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "the new expiry on B", func() bool {
		kb, err := b.keys.Get(id)
		return err == nil && kb.ExpiresAt != nil && kb.ExpiresAt.Equal(at)
	})
}

// A key's expiry is recorded once in the cluster: an instance that pulled
// another's "expired" event does not add its own.
func TestExpiryRecordedOnce(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	k, secret, expires := expiringKey(t, a, b)
	late := expires.Add(time.Minute)
	if _, err := a.keys.Verify(late, secret); !errors.Is(err, keys.ErrExpired) {
		t.Fatalf("A after expiry: %v", err)
	}
	flush(t, a, b)
	if _, err := b.keys.Verify(late.Add(time.Minute), secret); !errors.Is(err, keys.ErrExpired) {
		t.Fatalf("B after expiry: %v", err)
	}
	flush(t, b, a)
	want := []string{"created 0", "expired 0 presented after expires_at"}
	for name, in := range map[string]*instance{"A": a, "B": b} {
		if got := eventSummary(t, in, k.ID); !slices.Equal(got, want) {
			t.Fatalf("%s lists %q, want %q", name, got, want)
		}
	}
}

// Two instances that both see a key expire before either has pulled the
// other's "expired" event record it once in PostgreSQL (migration 014),
// and a mirror made afterwards lists it once. Moving the expiry later
// makes a new expiry, which is recorded again.
func TestExpiryRecordedOnceAcrossInstances(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	k, secret, expires := expiringKey(t, a, b)
	expiryRows := func() int {
		return countRows(t, a.cluster.Pool(), `SELECT count(*) FROM apiwarden_key_denials WHERE key_id = $1 AND type = 'expired'`, k.ID)
	}
	late := expires.Add(time.Minute)
	for _, in := range []*instance{a, b} {
		if _, err := in.keys.Verify(late, secret); !errors.Is(err, keys.ErrExpired) {
			t.Fatalf("after expiry: %v", err)
		}
	}
	flush(t, a, b)
	if n := expiryRows(); n != 1 {
		t.Fatalf("%d expired events in PostgreSQL for one expiry, want 1", n)
	}
	c := newInstance(t, url)
	want := []string{"created 0", "expired 0 presented after expires_at"}
	within(t, 10*time.Second, "the key mirrored on C", func() bool { _, err := c.keys.Get(k.ID); return err == nil })
	within(t, 10*time.Second, "the new mirror's events", func() bool {
		flush(t, c)
		return slices.Equal(eventSummary(t, c, k.ID), want)
	})

	later := late.Add(time.Hour)
	moveExpiry(t, a, b, k.ID, later)
	for _, in := range []*instance{a, b} {
		if _, err := in.keys.Verify(later.Add(time.Minute), secret); !errors.Is(err, keys.ErrExpired) {
			t.Fatalf("after the second expiry: %v", err)
		}
	}
	flush(t, a, b)
	if n := expiryRows(); n != 2 {
		t.Fatalf("%d expired events in PostgreSQL after a second expiry, want 2", n)
	}
}

// Two instances that see a key expire, and whose events reach PostgreSQL
// only after the expiry was moved later, still record that expiry once:
// each event names the expiry it saw, not the key's expiry when merged.
// The events are kept (a request was refused as expired: the audit trail
// says so); the later expiry, when it passes, gets its own.
func TestExpiryMovedBeforeTheMergeRecordedOnce(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	k, secret, expires := expiringKey(t, a, b)
	late := expires.Add(time.Minute)
	for _, in := range []*instance{a, b} {
		if _, err := in.keys.Verify(late, secret); !errors.Is(err, keys.ErrExpired) {
			t.Fatalf("after expiry: %v", err)
		}
	}
	later := late.Add(time.Hour)
	moveExpiry(t, a, b, k.ID, later)
	flush(t, a, b)
	rows, err := a.cluster.Pool().Query(ctxFor(t, 30*time.Second), `SELECT coalesce(to_char(expiry AT TIME ZONE 'UTC', 'HH24:MI:SS'), '-')
		FROM apiwarden_key_denials WHERE key_id = $1 AND type = 'expired' ORDER BY expiry`, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{expires.Format("15:04:05")}; !slices.Equal(got, want) {
		t.Fatalf("expired events in PostgreSQL (their expiry): %q, want %q", got, want)
	}
}

// Migration 014 keeps the first of the "expired" events two instances
// recorded for one expiry before it, and leaves an event of an earlier
// expiry (older than the key's expires_at) and the denials alone.
func TestMigration014KeepsOneEventAnExpiry(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	pool := newPool(t, pg.Database(t))
	sql := migrationsUpTo(t, 13)
	if _, err := cluster.MigrateFiles(ctx, pool, sql); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO apiwarden_keys (id, record, seq) VALUES ('k1', '{"expires_at": "2026-05-03T10:00:00Z"}', 1)`,
		`INSERT INTO apiwarden_key_denials (origin, flush_seq, key_id, type, seq, instance_id, actor, at, count) VALUES
			(1, 1, 'k1', 'expired', 5, 'a', 'system', '2026-05-03T10:01:00Z', 0),
			(2, 1, 'k1', 'expired', 4, 'b', 'system', '2026-05-03T10:02:00Z', 0),
			(3, 1, 'k1', 'expired', 6, 'c', 'system', '2026-05-03T10:00:00Z', 0),
			(3, 0, 'k1', 'expired', 2, 'c', 'system', '2026-05-02T09:00:00Z', 0),
			(1, 1, 'k1', 'rate_limited', 5, 'a', 'system', '2026-05-03T10:01:00Z', 3),
			(2, 1, 'k1', 'rate_limited', 4, 'b', 'system', '2026-05-03T10:02:00Z', 2)`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	sql[14] = mustRead(t, filepath.Join("migrations", "014_expiry_once.up.sql"))
	if _, err := cluster.MigrateFiles(ctx, pool, sql); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT type || ' ' || instance_id || ' ' || coalesce(to_char(expiry AT TIME ZONE 'UTC', 'DD HH24:MI'), '-')
		FROM apiwarden_key_denials ORDER BY type, instance_id, seq`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"expired b 03 10:00", "expired c -", "rate_limited a -", "rate_limited b -"}
	if !slices.Equal(got, want) {
		t.Fatalf("after migration 014: %q, want %q", got, want)
	}
}
