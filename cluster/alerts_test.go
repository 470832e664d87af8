package cluster_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apiwarden/apiwarden/alerting"
	"github.com/apiwarden/apiwarden/cluster"
)

// The outside world of two evaluators sharing one database: the same
// traffic (as part 2 will give every instance), one recording Stage each,
// and a leadership flag the test moves.

var alertT0 = time.Date(2026, 6, 2, 12, 0, 0, 0, time.UTC) // a Tuesday

// sharedTraffic is the global error rate both evaluators read. A test may
// make the next Window call wait until it says so.
type sharedTraffic struct {
	mu       sync.Mutex
	requests int64
	errors   int64
	hold     chan struct{} // when set, Window signals entered and waits on it
	entered  chan struct{}
}

func (f *sharedTraffic) set(requests, errors5xx int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests, f.errors = requests, errors5xx
}

// holdNext makes the next Window call wait; it returns a channel closed
// once that call has started, and the function that lets it go on.
func (f *sharedTraffic) holdNext() (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold, f.entered = make(chan struct{}), make(chan struct{})
	hold := f.hold
	return f.entered, func() { close(hold) }
}

func (f *sharedTraffic) Window(alerting.SubjectKind, time.Duration, time.Time) ([]alerting.Aggregate, error) {
	f.mu.Lock()
	hold, entered := f.hold, f.entered
	f.hold, f.entered = nil, nil
	agg := alerting.Aggregate{Requests: f.requests, Errors5xx: f.errors}
	f.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	return []alerting.Aggregate{agg}, nil
}

// notifications records what one evaluator hands to its notifiers.
type notifications struct {
	mu     sync.Mutex
	alerts []alerting.Alert
}

func (n *notifications) Exec(_ context.Context, alerts ...alerting.Alert) ([]alerting.Alert, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.alerts = append(n.alerts, alerts...)
	return alerts, nil
}

// count returns how many firing and resolved notifications were handed on.
func (n *notifications) count() (firing, resolved int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range n.alerts {
		if a.Firing() {
			firing++
		} else {
			resolved++
		}
	}
	return firing, resolved
}

// flag is a Leadership a test moves by hand; the real election is
// cluster.Leader's. When gate is set, Leading waits on it once.
type flag struct {
	leading atomic.Bool
	gate    atomic.Pointer[chan struct{}]
	asked   chan struct{}
}

func (f *flag) Leading() bool {
	if g := f.gate.Swap(nil); g != nil {
		close(f.asked)
		<-*g
	}
	return f.leading.Load()
}

type alertNode struct {
	ev       *alerting.Evaluator
	cluster  *cluster.Cluster
	notified *notifications
	lead     *flag
}

func errorSpike() alerting.Rule {
	return alerting.Rule{Name: "error-spike", Type: alerting.ErrorSpike, Subject: alerting.SubjectGlobal,
		Window: 5 * time.Minute, Threshold: 0.05, MinRequests: 50, For: 0, KeepFiringFor: 0,
		Severity: alerting.SeverityHigh, Cooldown: time.Minute}
}

// newAlertNode is one instance's evaluator on the shared database.
func newAlertNode(t testing.TB, url string, traffic alerting.TrafficSource, leading bool, tweak func(*alerting.Options)) *alertNode {
	t.Helper()
	c, err := cluster.Open(ctxFor(t, 30*time.Second), cluster.Options{URL: url, InstanceID: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	n := &alertNode{cluster: c, notified: &notifications{}, lead: &flag{}}
	n.lead.leading.Store(leading)
	opts := alerting.Options{
		State: c.AlertStore(), Rules: []alerting.Rule{errorSpike()}, Traffic: traffic,
		Notify: n.notified, Leadership: n.lead, RepeatInterval: time.Hour,
	}
	if tweak != nil {
		tweak(&opts)
	}
	if n.ev, err = alerting.New(opts); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *alertNode) eval(t testing.TB, at time.Time) {
	t.Helper()
	if err := n.ev.EvalAt(context.Background(), at); err != nil {
		t.Fatalf("pass at %s: %v", at.Format(time.TimeOnly), err)
	}
}

// only returns the one alert n sees, failing when there is not exactly one.
func (n *alertNode) only(t *testing.T) alerting.Alert {
	t.Helper()
	list, err := n.ev.List(alerting.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("want one alert, have %d: %+v", len(list), list)
	}
	return list[0]
}

// An ack on B is seen in List and Get on A and survives A's next passes,
// which send no repeat; the history is the same from both.
func TestClusterAlertAckOnOneInstanceSeenOnTheOther(t *testing.T) {
	url := pg.Database(t)
	traffic := &sharedTraffic{}
	now := alertT0
	clock := func() time.Time { return now }
	tick := func(o *alerting.Options) { o.Now = clock }
	a := newAlertNode(t, url, traffic, true, tick)
	b := newAlertNode(t, url, traffic, false, tick)

	traffic.set(100, 20)
	a.eval(t, now)
	firing := b.only(t)
	if firing.State != alerting.StateFiring {
		t.Fatalf("B sees %s, want firing", firing.State)
	}
	now = now.Add(10 * time.Second)
	acked, err := b.ev.Acknowledge(firing.ID, "dana", "looking")
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.ev.Get(firing.ID)
	if err != nil || got.Acknowledgement == nil || got.Acknowledgement.By != "dana" {
		t.Fatalf("A's Get: %+v, %v; want acknowledged by dana", got.Acknowledgement, err)
	}
	yes := true
	if list, err := a.ev.List(alerting.Query{Acknowledged: &yes}); err != nil || len(list) != 1 {
		t.Fatalf("A lists %d acknowledged alerts (%v), want 1", len(list), err)
	}

	// A's passes, with a new error rate and past the repeat interval,
	// keep the acknowledgement and send nothing more.
	traffic.set(100, 30)
	for i := range 3 {
		now = alertT0.Add(time.Duration(i+1) * 40 * time.Minute)
		a.eval(t, now)
	}
	got = b.only(t)
	if got.Acknowledgement == nil || !got.Acknowledgement.At.Equal(acked.Acknowledgement.At) || got.Value != 0.3 {
		t.Fatalf("after A's passes B sees ack %+v and value %v, want the ack kept and value 0.3", got.Acknowledgement, got.Value)
	}
	if f, r := a.notified.count(); f != 1 || r != 0 {
		t.Fatalf("A announced %d firing and %d resolved, want 1 firing (no repeat after the ack)", f, r)
	}
	if f, r := b.notified.count(); f+r != 0 {
		t.Fatalf("B, not leading, announced %d", f+r)
	}
	for name, n := range map[string]*alertNode{"A": a, "B": b} {
		h, err := n.ev.History(firing.ID)
		if err != nil || len(h) != 3 || h[2].Actor != "dana" {
			t.Fatalf("%s's history: %+v (%v), want pending, firing, acknowledged by dana", name, h, err)
		}
	}
}

// A resolve on A is seen on B; only A tells the receivers; the cool-down
// it starts holds on the next leader too.
func TestClusterAlertResolveOnOneInstanceSeenOnTheOther(t *testing.T) {
	url := pg.Database(t)
	traffic := &sharedTraffic{}
	now := alertT0
	tick := func(o *alerting.Options) { o.Now = func() time.Time { return now } }
	a := newAlertNode(t, url, traffic, true, tick)
	b := newAlertNode(t, url, traffic, false, tick)

	traffic.set(100, 20)
	a.eval(t, now)
	id := b.only(t).ID
	now = now.Add(10 * time.Second)
	if _, err := a.ev.Resolve(context.Background(), id, "dana", "fixed"); err != nil {
		t.Fatal(err)
	}
	if got := b.only(t); got.State != alerting.StateResolved || got.ResolvedBy != "dana" {
		t.Fatalf("B sees %s by %q, want resolved by dana", got.State, got.ResolvedBy)
	}
	if _, err := b.ev.Resolve(context.Background(), id, "eve", ""); !errors.Is(err, alerting.ErrAlreadyResolved) {
		t.Fatalf("resolving again on B: %v, want ErrAlreadyResolved", err)
	}
	if f, r := a.notified.count(); f != 1 || r != 1 {
		t.Fatalf("A announced %d firing and %d resolved, want 1 and 1", f, r)
	}
	if f, r := b.notified.count(); f+r != 0 {
		t.Fatalf("B announced %d", f+r)
	}

	// B leads now: the condition still holds, but the rule's minute of
	// cool-down after A's resolve opens nothing yet.
	a.lead.leading.Store(false)
	b.lead.leading.Store(true)
	b.eval(t, alertT0.Add(30*time.Second))
	if list, _ := b.ev.List(alerting.Query{}); len(list) != 1 {
		t.Fatalf("B opened an alert inside A's cool-down: %+v", list)
	}
	b.eval(t, alertT0.Add(2*time.Minute))
	if list, _ := a.ev.List(alerting.Query{}); len(list) != 2 || list[0].State != alerting.StateFiring || list[0].ID == id {
		t.Fatalf("after the cool-down A sees %+v, want a new firing alert beside the resolved one", list)
	}
}

// Leadership moves from A to B while an alert fires: B carries on with
// the same alert (no second one, no second notification) and resolves it;
// each Run skips its passes while it does not lead.
func TestClusterAlertLeadershipMoves(t *testing.T) {
	url := pg.Database(t)
	traffic := &sharedTraffic{}
	fast := func(o *alerting.Options) { o.Interval = 20 * time.Millisecond }
	a := newAlertNode(t, url, traffic, true, fast)
	b := newAlertNode(t, url, traffic, false, fast)
	traffic.set(100, 20)
	for _, n := range []*alertNode{a, b} {
		done := make(chan error, 1)
		go func() { done <- n.ev.Run(context.Background()) }()
		t.Cleanup(func() {
			n.ev.Stop()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}

	within(t, 10*time.Second, "A announces the alert", func() bool { f, _ := a.notified.count(); return f == 1 })
	within(t, 10*time.Second, "A makes more passes", func() bool { return a.ev.Stats().Evaluations >= 5 })
	if n := b.ev.Stats().Evaluations; n != 0 {
		t.Fatalf("B made %d passes while A led", n)
	}
	first := b.only(t)

	a.lead.leading.Store(false)
	b.lead.leading.Store(true)
	within(t, 10*time.Second, "B evaluates", func() bool { return b.ev.Stats().Evaluations >= 5 })
	passesOfA := a.ev.Stats().Evaluations
	if got := a.only(t); got.ID != first.ID || got.State != alerting.StateFiring {
		t.Fatalf("after the move A sees %s %s, want %s firing", got.ID, got.State, first.ID)
	}
	if f, _ := b.notified.count(); f != 0 {
		t.Fatalf("B announced the alert A had announced (%d)", f)
	}

	traffic.set(100, 0)
	within(t, 10*time.Second, "B resolves the alert", func() bool { _, r := b.notified.count(); return r == 1 })
	if got := a.only(t); got.ID != first.ID || got.State != alerting.StateResolved {
		t.Fatalf("A sees %s %s, want %s resolved", got.ID, got.State, first.ID)
	}
	if f, r := a.notified.count(); f != 1 || r != 0 || a.ev.Stats().Evaluations != passesOfA {
		t.Fatalf("A, following, announced %d firing and %d resolved and made %d passes more",
			f, r, a.ev.Stats().Evaluations-passesOfA)
	}
}

// firingOnTwo starts a leader A and a follower B on a new database, and
// has A open a firing alert on the shared traffic; it returns its id.
func firingOnTwo(t *testing.T) (a, b *alertNode, traffic *sharedTraffic, id string) {
	t.Helper()
	url := pg.Database(t)
	traffic = &sharedTraffic{}
	a = newAlertNode(t, url, traffic, true, nil)
	b = newAlertNode(t, url, traffic, false, nil)
	traffic.set(100, 20)
	a.eval(t, alertT0)
	return a, b, traffic, b.only(t).ID
}

// An ack committed while a pass reads its inputs is applied, not
// overwritten by the pass, which works on the alerts as stored.
func TestClusterAlertAckDuringPassReadIsKept(t *testing.T) {
	a, b, traffic, id := firingOnTwo(t)
	traffic.set(100, 40) // the pass will write the alert's new value
	entered, release := traffic.holdNext()
	done := make(chan error, 1)
	go func() { done <- a.ev.EvalAt(context.Background(), alertT0.Add(10*time.Second)) }()
	<-entered
	if _, err := b.ev.Acknowledge(id, "dana", ""); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.only(t); got.Acknowledgement == nil || got.Value != 0.4 {
		t.Fatalf("after the pass: ack %+v, value %v; want both the ack and the pass's value", got.Acknowledgement, got.Value)
	}
}

// An ack sent while a pass holds the alerts' lock waits for it and is
// applied after it, on what the pass committed.
func TestClusterAlertAckDuringPassApplyWaits(t *testing.T) {
	a, b, traffic, id := firingOnTwo(t)
	traffic.set(100, 40)
	gate := make(chan struct{})
	a.lead.asked = make(chan struct{})
	a.lead.gate.Store(&gate) // the pass asks Leading holding the lock
	passDone := make(chan error, 1)
	go func() { passDone <- a.ev.EvalAt(context.Background(), alertT0.Add(10*time.Second)) }()
	<-a.lead.asked
	ackDone := make(chan error, 1)
	go func() { _, err := b.ev.Acknowledge(id, "dana", ""); ackDone <- err }()
	within(t, 10*time.Second, "the ack waits on the alerts' lock", func() bool {
		var waiting int
		err := b.cluster.Pool().QueryRow(context.Background(),
			"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting)
		return err == nil && waiting == 1
	})
	close(gate)
	if err := <-passDone; err != nil {
		t.Fatal(err)
	}
	if err := <-ackDone; err != nil {
		t.Fatal(err)
	}
	a.eval(t, alertT0.Add(20*time.Second))
	if got := a.only(t); got.Acknowledgement == nil || got.Value != 0.4 {
		t.Fatalf("ack %+v, value %v; want both", got.Acknowledgement, got.Value)
	}
}

// An instance whose configuration lacks a rule (a rolling upgrade) leaves
// that rule's alerts alone when it starts; the leader's pass resolves
// them once its own configuration drops the rule.
func TestClusterAlertOfRemovedRuleResolvedByTheLeaderOnly(t *testing.T) {
	a, _, _, id := firingOnTwo(t)
	other := alerting.Rule{Name: "other", Type: alerting.ErrorSpike, Threshold: 0.9}
	newer := newAlertNode(t, a.cluster.Pool().Config().ConnString(), &sharedTraffic{}, false,
		func(o *alerting.Options) { o.Rules = []alerting.Rule{other} })
	if got := newer.only(t); got.ID != id || got.State != alerting.StateFiring {
		t.Fatalf("after a follower without the rule started: %s %s, want %s firing", got.ID, got.State, id)
	}
	if err := a.ev.SetRules([]alerting.Rule{other}); err != nil {
		t.Fatal(err)
	}
	a.eval(t, alertT0.Add(10*time.Second))
	if got := newer.only(t); got.State != alerting.StateResolved || got.ResolvedBy != "system" {
		t.Fatalf("after the leader's pass: %s by %q, want resolved by system", got.State, got.ResolvedBy)
	}
	if f, r := a.notified.count(); f != 1 || r != 0 {
		t.Fatalf("announced %d firing and %d resolved, want the firing only", f, r)
	}
}
