package limiter

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/internal/redistest"
	"github.com/apiwarden/apiwarden/store"
)

// A single instance's saved buckets, merged into Redis, are as spent on
// the shared buckets as they were locally: the tier buckets, a route
// bucket and the monthly counter. Merging again changes nothing, a dry
// run writes nothing, and a merge never gives back what the shared
// buckets spent since.
func TestMergeStoredIntoRedis(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	local := newTestLimiter(t, Options{Store: st, Now: time.Now})
	now := time.Now()
	local.AllowAt(now, Request{Subject: "k1", Tier: "free", Cost: 7})
	local.AllowAt(now, Request{Subject: "k1", Tier: "free", Route: "forms", RoutePerMinute: 5, Cost: 2})
	local.AllowAt(now, Request{Subject: "k2", Tier: "metered", Cost: 3})
	local.AllowAt(now.Add(-2*time.Hour), Request{Subject: "old", Tier: "free"}) // full again by now
	local.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := store.OpenReadOnly(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	srv := redistest.Start(t)
	r := newTestRedis(t, srv, RedisOptions{Timeout: 5 * time.Second})
	ctx := context.Background()
	merge := func(dry bool) MergeCounts {
		t.Helper()
		n, err := r.MergeStored(ctx, src, time.Now(), dry, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	if n := merge(true); n != (MergeCounts{Total: 3, Merged: 3}) {
		t.Fatalf("dry run: %+v, want 3 records to merge", n)
	}
	if keys := redisClient(t, srv).DBSize(ctx).Val(); keys != 0 {
		t.Fatalf("a dry run wrote %d keys", keys)
	}
	if n := merge(false); n != (MergeCounts{Total: 3, Merged: 3}) {
		t.Fatalf("merge: %+v, want 3 records merged", n)
	}
	// Spent 9 of 10 a minute and 9 of 100 an hour (7, and 2 on the
	// route); a token of the minute comes back every 6 s, so a slow
	// machine may see one or two more.
	u := r.Peek(time.Now(), "k1", "free")
	if u.Minute.Remaining < 1 || u.Minute.Remaining > 3 || u.Hour.Remaining > 91 {
		t.Fatalf("k1 on the shared buckets: minute %d hour %d, want about 1 and 91 left", u.Minute.Remaining, u.Hour.Remaining)
	}
	if u := r.Peek(time.Now(), "k2", "metered"); u.MonthlyUsed != 3 {
		t.Fatalf("k2's monthly count on the shared buckets: %d, want 3", u.MonthlyUsed)
	}
	res := r.Allow(Request{Subject: "k1", Tier: "free", Route: "forms", RoutePerMinute: 5})
	if b, _ := find(res, PolicyRoute); !res.Allowed || b.Remaining > 3 {
		t.Fatalf("route bucket after the merge: %+v, want 2 of 5 spent before this request", b)
	}

	// The route request spent a token of k1's hour on the shared
	// buckets too (90 left, the file says 91); merging the file again
	// leaves Redis as it is. An hour token takes 36 s to come back.
	before := r.Peek(time.Now(), "k1", "free").Hour.Remaining
	if n := merge(false); n.Merged != 0 || n.Unchanged != 3 {
		t.Fatalf("second merge: %+v, want nothing merged", n)
	}
	if after := r.Peek(time.Now(), "k1", "free").Hour.Remaining; after > before {
		t.Fatalf("the second merge gave back tokens: %d left before, %d after", before, after)
	}
}
