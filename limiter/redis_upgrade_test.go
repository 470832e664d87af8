package limiter

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiwarden/apiwarden/internal/redistest"
)

// previousScript is the allowScript of the version before this one,
// whose reply held every decision's values: an instance not yet upgraded.
type previousScript struct {
	script *redis.Script
	client *redis.Client
	r      *Redis // whose keys, tiers and calendar it shares
}

func newPreviousScript(t *testing.T, srv *redistest.Server, r *Redis) *previousScript {
	t.Helper()
	src, err := os.ReadFile("testdata/allow_script_previous.lua")
	if err != nil {
		t.Fatal(err)
	}
	return &previousScript{script: redis.NewScript(string(src)), client: redisClient(t, srv), r: r}
}

// allow decides req alone, with the keys and arguments AllowAt sends,
// and returns whether it was admitted.
func (p *previousScript) allow(t *testing.T, now time.Time, req Request) bool {
	v := p.r.local.viewAt(now)
	tl := v.lookup(req.Tier)
	in := scriptInput{subject: req.Subject, month: v.day.monthID}
	var routeCap int64
	if req.Route != "" {
		in.route, routeCap = req.Route, microLimit(req.RoutePerMinute, RouteWindow).capacity
	}
	in.args = [scriptArgs]int64{1, microLimit(tl.hour.capacity, HourWindow).capacity,
		microLimit(tl.minute.capacity, MinuteWindow).capacity, routeCap, tl.quota, v.day.start / 1000,
		time.Unix(0, v.day.monthEnd).Add(24 * time.Hour).Unix()}
	keys, args := in.appendGroup(p.r.prefix, nil, nil, 1)
	vals, err := p.script.Run(context.Background(), p.client, keys, args...).Int64Slice()
	if err != nil || len(vals) != scriptReply {
		t.Errorf("previous script: %v %v", vals, err)
		return false
	}
	return vals[replyReason] == 0
}

// During a rolling upgrade, instances of the previous version and of this
// one decide on one Redis at once. The keys and what they hold did not
// change, so each sees the other's debits to the token, and together,
// concurrently, they admit exactly the burst, the route's capacity and
// the monthly quota.
func TestRedisScriptsOfTwoVersions(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv, RedisOptions{Timeout: 10 * time.Second})
	previous := newPreviousScript(t, srv, r)
	now := time.Now()

	// One at a time, in turn: the minute bucket counts down across both.
	req := Request{Subject: "in-turn", Tier: "free"}
	for i := range 12 {
		want := i < 10
		if i%2 == 0 {
			if got := previous.allow(t, now, req); got != want {
				t.Fatalf("request %d, previous version: admitted %v, want %v", i, got, want)
			}
			continue
		}
		res := r.AllowAt(now, req)
		b, _ := find(res, PolicyMinute)
		if res.Allowed != want || (want && b.Remaining != int64(9-i)) {
			t.Fatalf("request %d, this version: %+v, want admitted %v with %d left", i, res, want, 9-i)
		}
	}

	// Concurrently, half the callers on each version.
	const callers = 40
	for _, k := range limitedKinds() {
		var mu sync.Mutex
		n := 0
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				var ok bool
				if i%2 == 0 {
					ok = previous.allow(t, now, k.req)
				} else {
					ok = r.AllowAt(now, k.req).Allowed
				}
				if ok {
					mu.Lock()
					n++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if n != k.want {
			t.Errorf("%s: %d of %d admitted across both versions, want exactly %d", k.req.Subject, n, callers, k.want)
		}
	}
	if st := r.Stats(); st.Fallbacks != 0 {
		t.Fatalf("a decision fell back: %+v", st)
	}
}
