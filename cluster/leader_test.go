package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/cluster"
)

// idleMirror is a Listener's mirror for tests about other topics.
type idleMirror struct{}

func (idleMirror) Sync(context.Context) error { return nil }
func (idleMirror) MirrorSeq() int64           { return 0 }

// candidate is one instance standing for the "alerts" duty, with its own
// pool and its own listener delivering resignations.
type candidate struct {
	leader    *cluster.Leader
	cluster   *cluster.Cluster
	stopped   bool
	runDone   chan error
	listenEnd func()
}

func newCandidate(t *testing.T, url, id string, ttl time.Duration) *candidate {
	t.Helper()
	c, err := cluster.Open(ctxFor(t, 30*time.Second), cluster.Options{URL: url, InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cluster.NewLeader(c, cluster.LeaderOptions{Name: "alerts", Holder: id, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	lis := cluster.NewListener(c, idleMirror{}, cluster.ListenerOptions{MaxBackoff: 200 * time.Millisecond,
		Handlers: map[string]func(string){cluster.LeadersChannel: l.Resigned}})
	listenDone := make(chan error, 1)
	go func() { listenDone <- lis.Run(context.Background()) }()
	cand := &candidate{leader: l, cluster: c, runDone: make(chan error, 1),
		listenEnd: func() { lis.Stop(); <-listenDone }}
	within(t, 10*time.Second, id+"'s listener connected", c.Healthy)
	go func() { cand.runDone <- l.Run(context.Background()) }()
	t.Cleanup(func() {
		cand.stop()
		cand.listenEnd()
		c.Close()
	})
	return cand
}

// stop resigns and waits for Run to return.
func (c *candidate) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	c.leader.Stop()
	<-c.runDone
}

// leading returns the candidates leading now.
func leading(cands ...*candidate) []*candidate {
	var out []*candidate
	for _, c := range cands {
		if c.leader.Leading() {
			out = append(out, c)
		}
	}
	return out
}

// One of two instances leads; when it stops it resigns with a NOTIFY and
// the other takes over at once, long before the lease would have expired.
func TestLeaderResignsAndFollowerTakesOver(t *testing.T) {
	url := pg.Database(t)
	ttl := 20 * time.Second // far longer than the test waits: only the resignation can move it
	a := newCandidate(t, url, "pod-a", ttl)
	within(t, 10*time.Second, "pod-a leads", a.leader.Leading)
	b := newCandidate(t, url, "pod-b", ttl)
	time.Sleep(100 * time.Millisecond) // b has tried (its first attempt is at once)
	if b.leader.Leading() {
		t.Fatal("pod-b leads while pod-a holds an unexpired lease")
	}
	info, err := b.cluster.Leaders(ctxFor(t, 5*time.Second))
	if err != nil || len(info) != 1 || info[0].Name != "alerts" || info[0].Holder != "pod-a" {
		t.Fatalf("Leaders() = %+v, %v; want alerts held by pod-a", info, err)
	}
	began := time.Now()
	a.stop()
	if a.leader.Leading() {
		t.Fatal("pod-a still leads after Stop")
	}
	within(t, 5*time.Second, "pod-b takes over after the resignation", b.leader.Leading)
	t.Logf("takeover after resignation: %v", time.Since(began))
}

// A holder that dies without resigning (its row stays) loses the duty
// when its lease expires on PostgreSQL's clock; a follower then takes it
// within half a TTL.
func TestLeaderTakesExpiredLease(t *testing.T) {
	url := pg.Database(t)
	pool := newPool(t, url)
	ttl := time.Second
	b := newCandidate(t, url, "pod-b", ttl)
	if _, err := pool.Exec(ctxFor(t, 5*time.Second), `INSERT INTO apiwarden_leaders (name, holder, elected_at, expires_at)
		VALUES ('alerts', 'pod-dead', now(), now() + interval '1500 milliseconds')
		ON CONFLICT (name) DO UPDATE SET holder = 'pod-dead', expires_at = now() + interval '1500 milliseconds'`); err != nil {
		t.Fatal(err)
	}
	// b may have taken the empty row before the insert; the update above
	// handed it to the dead holder, which b's lease (sent before) cannot
	// outlive by more than a TTL.
	within(t, 3*time.Second, "pod-b's old lease runs out", func() bool { return !b.leader.Leading() })
	var holder string
	if err := pool.QueryRow(ctxFor(t, 5*time.Second), "SELECT holder FROM apiwarden_leaders WHERE name = 'alerts'").Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if holder != "pod-dead" {
		t.Fatalf("holder %q before the dead lease expired; want pod-dead", holder)
	}
	within(t, 10*time.Second, "pod-b takes the expired lease", b.leader.Leading)
}

// However the candidates race, at most one of them leads at any moment.
func TestAtMostOneLeader(t *testing.T) {
	url := pg.Database(t)
	ttl := 400 * time.Millisecond
	var cands []*candidate
	for _, id := range []string{"pod-a", "pod-b", "pod-c"} {
		cands = append(cands, newCandidate(t, url, id, ttl))
	}
	seen := map[*candidate]bool{}
	until := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(until); i++ {
		if n := leading(cands...); len(n) > 1 {
			t.Fatalf("%d candidates lead at once", len(n))
		} else if len(n) == 1 {
			seen[n[0]] = true
		}
		if i%100 == 99 { // hand the duty on now and then
			for _, c := range cands {
				if c.leader.Leading() && !c.stopped && len(cands) > 1 {
					c.stop()
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if len(seen) < 2 {
		t.Errorf("the duty never moved: %d candidates led", len(seen))
	}
}
