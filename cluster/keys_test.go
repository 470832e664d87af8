package cluster_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
	"github.com/apiwarden/apiwarden/keys"
	"github.com/apiwarden/apiwarden/store/storetest"
)

const testSecret = "cluster-test-secret-0123456789"

var testPolicy = keys.Policy{Tiers: []string{"free", "basic"}, DefaultTier: "free", Scopes: []string{"read", "write"}}

// instance is one apiwarden's key side: its own bbolt mirror, its own
// pool and its own listener, sharing a database with the others.
type instance struct {
	keys     *keys.Service
	cluster  *cluster.Cluster
	listener *cluster.Listener
	done     chan error
}

func newInstance(t testing.TB, url string) *instance {
	t.Helper()
	return newInstanceResync(t, url, time.Second)
}

// newInstanceResync is newInstance with the listener's resync interval.
func newInstanceResync(t testing.TB, url string, resync time.Duration) *instance {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	c, err := cluster.Open(ctx, cluster.Options{URL: url, InstanceID: t.Name(), KeySecretCheck: keys.SecretCheck([]byte(testSecret))})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := keys.New(keys.Options{Store: storetest.MustOpen(t), Secret: []byte(testSecret), Policy: testPolicy, Records: c})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{keys: svc, cluster: c, done: make(chan error, 1)}
	in.listener = cluster.NewListener(c, svc, cluster.ListenerOptions{ResyncInterval: resync, MaxBackoff: 200 * time.Millisecond})
	go func() { in.done <- in.listener.Run(context.Background()) }()
	t.Cleanup(func() {
		in.listener.Stop()
		<-in.done
		svc.Close()
		c.Close()
	})
	return in
}

// keysOver is a key service whose system of record is c, with its own
// bbolt mirror and no listener, closed when t ends (before c, which the
// caller's earlier cleanup closes).
func keysOver(t testing.TB, c *cluster.Cluster) *keys.Service {
	t.Helper()
	svc, err := keys.New(keys.Options{Store: storetest.MustOpen(t), Secret: []byte(testSecret), Policy: testPolicy, Records: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc
}

// within polls cond until it holds or d has passed.
func within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func verifies(in *instance, secret string) error {
	_, err := in.keys.Verify(time.Now(), secret)
	return err
}

// A key made on one instance passes on the other within a second; a
// revoke on the other is refused on the first within a second; a
// zero-grace rotation ends the old secret everywhere and the new one
// works everywhere. Every change's audit event reaches both mirrors.
func TestKeyChangesPropagate(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	within(t, 5*time.Second, "listeners connected", func() bool { return a.cluster.Healthy() && b.cluster.Healthy() })

	k, secret, err := a.keys.Create(keys.CreateParams{Name: "planner", OwnerID: "org_1", Scopes: []string{"read"}}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := verifies(a, secret); err != nil {
		t.Fatalf("on the writing instance at once: %v", err)
	}
	within(t, time.Second, "created on A, valid on B", func() bool { return verifies(b, secret) == nil })

	_, newSecret, err := b.keys.Rotate(k.ID, new(time.Duration), "admin")
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "rotated on B, old secret refused on A", func() bool { return errors.Is(verifies(a, secret), keys.ErrNotFound) })
	within(t, time.Second, "rotated on B, new secret valid on A", func() bool { return verifies(a, newSecret) == nil })

	if _, err := a.keys.Update(k.ID, keys.Patch{Name: ptr("renamed")}, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.keys.Revoke(k.ID, "admin", "left"); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "revoked on B, refused on A", func() bool { return errors.Is(verifies(a, newSecret), keys.ErrRevoked) })
	if _, err := a.keys.Revoke(k.ID, "admin", "again"); !errors.Is(err, keys.ErrAlreadyRevoked) {
		t.Fatalf("second revoke from A: %v, want ErrAlreadyRevoked (A must read PostgreSQL's record, not its own)", err)
	}
	for name, in := range map[string]*instance{"A": a, "B": b} {
		got, err := in.keys.Get(k.ID)
		if err != nil || got.Name != "renamed" || got.Status != keys.StatusRevoked {
			t.Fatalf("%s: %+v (%v)", name, got, err)
		}
		events, _, err := in.keys.Events(k.ID, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var types []keys.EventType
		for _, ev := range events {
			types = append(types, ev.Type)
		}
		want := []keys.EventType{keys.EventRevoked, keys.EventUpdated, keys.EventRotated, keys.EventCreated}
		if len(types) != len(want) || types[0] != want[0] || types[3] != want[3] {
			t.Fatalf("%s: events %v, want %v", name, types, want)
		}
		if in.keys.MirrorSeq() != 4 {
			t.Fatalf("%s: mirror at %d, want 4", name, in.keys.MirrorSeq())
		}
	}
}

// Concurrent patches of one key from two instances serialise in
// PostgreSQL: none is lost, and both mirrors end with the same record.
func TestConcurrentWritesSerialise(t *testing.T) {
	url := pg.Database(t)
	a, b := newInstance(t, url), newInstance(t, url)
	k, _, err := a.keys.Create(keys.CreateParams{Name: "k"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, in := range []*instance{a, b, a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			meta := map[string]string{"writer": string(rune('a' + i))}
			if _, err := in.keys.Update(k.ID, keys.Patch{Meta: &meta}, "admin"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	within(t, time.Second, "both mirrors at sequence 9", func() bool { return a.keys.MirrorSeq() == 9 && b.keys.MirrorSeq() == 9 })
	ka, _ := a.keys.Get(k.ID)
	kb, _ := b.keys.Get(k.ID)
	if ka.Meta["writer"] != kb.Meta["writer"] || !ka.UpdatedAt.Equal(kb.UpdatedAt) {
		t.Fatalf("mirrors differ: %v vs %v", ka.Meta, kb.Meta)
	}
	events, _, _ := b.keys.Events(k.ID, "", 100)
	if len(events) != 9 {
		t.Fatalf("%d events on B, want 9 (1 create + 8 updates)", len(events))
	}
}

// Changes made while an instance was not listening (its notifications
// are lost for good) reach its mirror when its listener starts: a start
// always resyncs from the mirror's last sequence, in as many batches as
// the backlog needs (more than one here).
func TestMirrorCatchesUpAfterMissedNotifications(t *testing.T) {
	url := pg.Database(t)
	a := newInstance(t, url)
	ctx := ctxFor(t, 30*time.Second)
	c, err := cluster.Open(ctx, cluster.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	late, err := keys.New(keys.Options{Store: storetest.MustOpen(t), Secret: []byte(testSecret), Policy: testPolicy, Records: c})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	const missed = 510 // more than one sync batch (500)
	var secrets []string
	for range missed {
		_, s, err := a.keys.Create(keys.CreateParams{Name: "missed"}, "admin")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	if _, err := late.Verify(time.Now(), secrets[0]); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("before listening: %v, want ErrNotFound", err)
	}
	l := cluster.NewListener(c, late, cluster.ListenerOptions{})
	done := make(chan error, 1)
	go func() { done <- l.Run(context.Background()) }()
	defer func() { l.Stop(); <-done }()
	within(t, 5*time.Second, "caught up on start", func() bool { return late.MirrorSeq() == missed })
	for _, s := range []string{secrets[0], secrets[499], secrets[500], secrets[missed-1]} {
		if _, err := late.Verify(time.Now(), s); err != nil {
			t.Fatalf("missed key: %v", err)
		}
	}
}

// A notification that never came (here: a change committed without one)
// leaves a gap the next notification reveals; the listener then reads
// every change after its mirror's last, so the silent change arrives
// with the announced one, long before the periodic resync.
func TestGapInNotificationsResyncs(t *testing.T) {
	url := pg.Database(t)
	a := newInstance(t, url)
	b := newInstanceResync(t, url, time.Hour)
	within(t, 5*time.Second, "listeners connected", func() bool { return a.cluster.Healthy() && b.cluster.Healthy() })
	k, secret, err := a.keys.Create(keys.CreateParams{Name: "silently revoked"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "key on B", func() bool { return verifies(b, secret) == nil })

	// A revoke committed with no NOTIFY, as if the notification was lost.
	ctx := ctxFor(t, 10*time.Second)
	tx, err := a.cluster.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := tx.QueryRow(ctx, "UPDATE apiwarden_key_changes SET last_seq = last_seq + 1 RETURNING last_seq").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE apiwarden_keys SET seq = $2,
		record = jsonb_set(record, '{revoked_at}', to_jsonb(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) WHERE id = $1`, k.ID, seq); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO apiwarden_key_events (seq, key_id, type, actor, at) VALUES ($1, $2, 'revoked', 'admin', now())", seq, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := verifies(b, secret); err != nil {
		t.Fatalf("B learned of a change nobody announced: %v (the test is not testing a gap)", err)
	}

	if _, _, err := a.keys.Create(keys.CreateParams{Name: "announced"}, "admin"); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "the silent revoke on B after the next notification", func() bool { return errors.Is(verifies(b, secret), keys.ErrRevoked) })
}

func ptr[T any](v T) *T { return &v }

// A database restored from a backup ends its change log before the
// mirror's last sequence. The mirror notices and replays the log from the
// start: it follows the restored database again, without duplicating the
// audit events it already had.
func TestMirrorAheadOfRestoredDatabaseReplays(t *testing.T) {
	url := pg.Database(t)
	a := newInstance(t, url)
	first, _, err := a.keys.Create(keys.CreateParams{Name: "before the backup"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := a.keys.Create(keys.CreateParams{Name: "before the backup too"}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.keys.Create(keys.CreateParams{Name: "lost with the restore"}, "admin"); err != nil {
		t.Fatal(err)
	}
	if a.keys.MirrorSeq() != 3 {
		t.Fatalf("mirror at %d, want 3", a.keys.MirrorSeq())
	}
	// "Restore" the database as it was after change 2, then change it.
	ctx := ctxFor(t, 10*time.Second)
	if _, err := a.cluster.Pool().Exec(ctx, `DELETE FROM apiwarden_key_events WHERE seq = 3;
		DELETE FROM apiwarden_keys WHERE seq = 3; UPDATE apiwarden_key_changes SET last_seq = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.keys.Update(second.ID, keys.Patch{Name: ptr("after the restore")}, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := a.keys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if a.keys.MirrorSeq() != 3 {
		t.Fatalf("mirror at %d after the replay, want 3 (the restored log plus one change)", a.keys.MirrorSeq())
	}
	got, err := a.keys.Get(second.ID)
	if err != nil || got.Name != "after the restore" {
		t.Fatalf("the change after the restore did not reach the mirror: %+v %v", got, err)
	}
	events, _, err := a.keys.Events(first.ID, "", 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("%d events for the first key after the replay (%v), want 1: a replay must not duplicate", len(events), err)
	}
}
