package limiter

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/store"
	"github.com/apiwarden/apiwarden/store/storetest"
)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func recordCount(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	if err := s.View(func(tx *store.Tx) error {
		return tx.Bucket(store.BucketLimiter).ForEach(func(k, v []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRestartKeepsRemaining(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	l := newTestLimiter(t, Options{Store: s})
	l.AllowAt(t0, Request{Subject: "k1", Tier: "free", Cost: 7})
	l.AllowAt(t0, Request{Subject: "k1", Tier: "free", Route: "forms", RoutePerMinute: 5, Cost: 2})
	l.AllowAt(t0, Request{Subject: "k2", Tier: "metered", Cost: 3})
	l.AllowAt(t0.Add(-2*time.Hour), Request{Subject: "old", Tier: "free"}) // full again by t0
	l.Stop()
	l.Stop() // safe twice
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// 12 s later, in a new process.
	s = openStore(t, dir)
	defer s.Close()
	later := t0.Add(12 * time.Second)
	l2 := newTestLimiter(t, Options{Store: s, Now: func() time.Time { return later }})
	cases := []struct {
		subject      Subject
		tier         string
		hour, minute int64
		used         int64
	}{
		// k1 took 9 at t0: minute debt 54 s, 42 s after 12 s: 10-7 = 3;
		// hour debt 324 s, 312 s after 12 s: 100-9 = 91.
		{"k1", "free", 91, 3, 0},
		// k2: 3 of 100/min and 1000/h are back by now; the monthly count stays.
		{"k2", "metered", 1000, 100, 3},
		{"old", "free", 100, 10, 0},
	}
	for _, tc := range cases {
		u := l2.Peek(later, tc.subject, tc.tier)
		if u.Hour.Remaining != tc.hour || u.Minute.Remaining != tc.minute || u.MonthlyUsed != tc.used {
			t.Errorf("%s after restart: hour %d minute %d used %d, want %d %d %d",
				tc.subject, u.Hour.Remaining, u.Minute.Remaining, u.MonthlyUsed, tc.hour, tc.minute, tc.used)
		}
	}
	// The route bucket came back too: 2 of 5 (a token per 12 s) at t0.
	res := l2.AllowAt(later, Request{Subject: "k1", Tier: "free", Route: "forms", RoutePerMinute: 5})
	if b, _ := find(res, PolicyRoute); b.Remaining != 3 {
		t.Errorf("route after restart: %+v", b)
	}
	// The monthly quota is not fresh: 2 more fit, not 5.
	if res := l2.AllowAt(later, Request{Subject: "k2", Tier: "metered", Cost: 3}); res.Reason != ReasonQuotaExceeded {
		t.Errorf("restart handed out a fresh quota: %+v", res)
	}
	// "old" was full, so it was never written (or was deleted).
	if st := l2.Stats(); st.Subjects != 3 {
		t.Errorf("restored %d entries, want k1, its route and k2", st.Subjects)
	}
}

func TestRestoreAppliesNewTiers(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	l := newTestLimiter(t, Options{Store: s})
	l.AllowAt(t0, Request{Subject: "k", Tier: "free", Cost: 4}) // 6 of 10 left
	l.Stop()
	s.Close()

	s = openStore(t, dir)
	defer s.Close()
	tiers := map[string]Tier{"free": {RequestsPerHour: 100, BurstPerMinute: 5}}
	l2 := newTestLimiter(t, Options{Store: s, Tiers: tiers})
	if u := l2.Peek(t0, "k", "free"); u.Minute.Limit != 5 || u.Minute.Remaining != 5 {
		t.Errorf("restored into a smaller tier: %+v", u.Minute)
	}
}

func TestSnapshotIsIncrementalAndDeletesDropped(t *testing.T) {
	s := storetest.MustOpen(t)
	l := newTestLimiter(t, Options{Store: s})
	const n = 10_000 // more than one transaction's worth
	for i := range n {
		l.AllowAt(t0, Request{Subject: Subject(fmt.Sprintf("k%d", i)), Tier: "free"})
	}
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.LastSnapshotWritten != n || st.Snapshots != 1 {
		t.Fatalf("first snapshot: %+v", st)
	}
	if got := recordCount(t, s); got != n {
		t.Fatalf("%d records, want %d", got, n)
	}
	// Only what changed is written again.
	l.AllowAt(t0.Add(time.Second), Request{Subject: "k1", Tier: "free"})
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.LastSnapshotWritten != 1 || st.LastSnapshotDeleted != 0 {
		t.Fatalf("second snapshot: %+v", st)
	}
	// An hour later everything is full; the sweep drops it and the next
	// snapshot deletes the records.
	if got := l.Sweep(t0.Add(2 * time.Hour)); got != n {
		t.Fatalf("swept %d", got)
	}
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if got := recordCount(t, s); got != 0 {
		t.Fatalf("%d records left after the sweep", got)
	}
}

func TestSnapshotDeletesThenRewritesARecreatedKey(t *testing.T) {
	s := storetest.MustOpen(t)
	now := t0
	l := newTestLimiter(t, Options{Store: s, Now: func() time.Time { return now }})
	req := Request{Subject: "k", Tier: "free", Cost: 5}
	l.AllowAt(now, req)
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	l.Sweep(now) // tombstone for k
	l.AllowAt(now, req)
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if got := recordCount(t, s); got != 1 {
		t.Fatalf("%d records, want k's new one", got)
	}
	l2 := newTestLimiter(t, Options{Store: s, Now: func() time.Time { return now }})
	if u := l2.Peek(now, "k", "free"); u.Minute.Remaining != 5 {
		t.Fatalf("restored %+v", u.Minute)
	}
}

func TestCorruptRecordIsSkippedAndDeleted(t *testing.T) {
	s := storetest.MustOpen(t)
	good := appendRecord(nil, &entry{tier: "free", minute: bucket{full: t0.Add(time.Minute).UnixNano(), capacity: 10}})
	err := s.Update(func(tx *store.Tx) error {
		b := tx.Bucket(store.BucketLimiter)
		if err := b.Put([]byte("\x05junk"), []byte{9, 9}); err != nil {
			return err
		}
		return b.Put(appendKey(nil, entryKey{subject: "fine"}), good)
	})
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLimiter(t, Options{Store: s})
	if st := l.Stats(); st.RestoreSkipped != 1 || st.Subjects != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := recordCount(t, s); got != 1 {
		t.Fatalf("%d records, want the good one", got)
	}
	if u := l.Peek(t0, "fine", "free"); u.Minute.Remaining != 0 {
		t.Fatalf("good record: %+v", u.Minute)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	e := &entry{
		key:     entryKey{subject: "ip:2001:db8::1", route: "forms.read"},
		tier:    "premium",
		hour:    bucket{full: -5, capacity: 1 << 40},
		minute:  bucket{full: t0.UnixNano(), capacity: 10},
		route:   bucket{full: t0.UnixNano() + 1, capacity: 3},
		changed: t0.UnixNano(),
		month:   24315,
		used:    1 << 33,
	}
	got, err := decodeRecord(appendKey(nil, e.key), appendRecord(nil, e))
	if err != nil {
		t.Fatal(err)
	}
	if *got != *e {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	for _, bad := range [][]byte{nil, {2, 0}, {1, flagHour}, append(appendRecord(nil, e), 0)} {
		if _, err := decodeRecord(appendKey(nil, e.key), bad); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("%v: err = %v", bad, err)
		}
	}
	if _, err := decodeRecord([]byte{200}, appendRecord(nil, e)); !errors.Is(err, ErrCorruptRecord) {
		t.Errorf("bad key: %v", err)
	}
}

func TestSnapshotFailureRewritesEverythingNextTime(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	l := newTestLimiter(t, Options{Store: s})
	l.AllowAt(t0, Request{Subject: "k", Tier: "free"})
	s.Close()
	err := l.Snapshot()
	if !errors.Is(err, ErrSnapshot) || !errors.Is(err, store.ErrClosed) {
		t.Fatalf("snapshot on a closed store: %v", err)
	}
	if st := l.Stats(); st.SnapshotErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A limiter sharing the reopened store is not possible in-process; the
	// flag is what makes the next snapshot complete.
	if !l.snapshotAll.Load() {
		t.Fatal("next snapshot will not rewrite everything")
	}
}

func TestNoStoreSnapshotIsNoop(t *testing.T) {
	l := newTestLimiter(t, Options{})
	l.AllowAt(t0, Request{Subject: "k", Tier: "free"})
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
}
