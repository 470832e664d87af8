package loopedge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiwarden/apiwarden/api/gateway"
	"github.com/apiwarden/apiwarden/enforce"
	"github.com/apiwarden/apiwarden/internal/edgetest"
	"github.com/apiwarden/apiwarden/internal/redistest"
	"github.com/apiwarden/apiwarden/limiter"
	"github.com/apiwarden/apiwarden/metrics"
)

// waitingProxy is one loop in front of an upstream, deciding /limited
// through a real redis-server (an IP-limited public route) and serving
// every other path as an internal route, which no limiter decides. The
// tests pause Redis (SIGSTOP) to hold a decision out.
type waitingProxy struct {
	s      *Server
	addr   string
	recs   *edgetest.Records
	redis  *redistest.Server
	sent   atomic.Int64 // script calls sent to Redis
	served atomic.Int64 // requests the upstream answered
}

// startWaitingProxy starts a waitingProxy whose write_timeout is write.
func startWaitingProxy(t *testing.T, write time.Duration) *waitingProxy {
	t.Helper()
	w := &waitingProxy{redis: redistest.Start(t), recs: &edgetest.Records{}}
	up := edgetest.NewCountingUpstream(t, func(rw http.ResponseWriter, r *http.Request) {
		w.served.Add(1)
		io.WriteString(rw, "ok")
	})
	// A paused Redis holds a decision for as long as the test needs: the
	// client's and the limiter's timeouts are longer than any test.
	client := redis.NewClient(&redis.Options{Addr: w.redis.Addr(), DisableIdentity: true, MaxRetries: -1,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, ContextTimeoutEnabled: true})
	client.AddHook(scriptHook{&w.sent})
	t.Cleanup(func() { client.Close() })
	local, err := limiter.New(limiter.Options{Tiers: map[string]limiter.Tier{"ip": {RequestsPerHour: 1000, BurstPerMinute: 1000}}})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := limiter.NewRedis(local, limiter.RedisOptions{Client: client, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	routes, err := enforce.NewRoutes([]enforce.Route{{Pattern: "/limited", Preset: enforce.Public, Tier: "ip"}},
		enforce.Route{Preset: enforce.Internal})
	if err != nil {
		t.Fatal(err)
	}
	o := gateway.ProxyOptions{ResponseHeaderTimeout: 5 * time.Second}
	o.Upstream, _ = url.Parse(up.URL)
	gw := gateway.New(gateway.Options{Gate: gateway.GateOptions{Engine: enforce.NewEngine(nil, shared, enforce.Policy{Routes: routes}),
		Recorder: w.recs, InternalSampleRate: 1, MaxHeaderBytes: 8 << 10}, Proxy: o})
	if !gw.DecisionMayWait() {
		t.Fatal("a gateway whose limits are in Redis says its decisions never wait")
	}
	w.s, err = New(Options{Gateway: gw, MaxHeaderBytes: 8 << 10, Loops: 1,
		Timeouts: Timeouts{ReadHeader: 5 * time.Second, Idle: 5 * time.Second, Write: write}})
	if err != nil {
		t.Fatal(err)
	}
	w.addr = edgetest.Serve(t, w.s.Serve, w.s.Close)
	return w
}

// scriptHook counts the script calls a Redis client sends, alone or in
// a pipeline.
type scriptHook struct{ sent *atomic.Int64 }

func (h scriptHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h scriptHook) count(cmd redis.Cmder) {
	if strings.HasPrefix(cmd.Name(), "eval") {
		h.sent.Add(1)
	}
}

// holdDecision pauses Redis, sends GET /limited on a new connection and
// returns it once its decision waits on Redis.
func (w *waitingProxy) holdDecision(t *testing.T) net.Conn {
	t.Helper()
	w.redis.Pause()
	t.Cleanup(w.redis.Resume) // a failed test must not leave it stopped
	before := w.sent.Load()
	conn := edgetest.SendGet(t, w.addr, "/limited")
	edgetest.Poll(t, 10*time.Second, "the decision's script call", func() bool { return w.sent.Load() > before })
	return conn
}

// stop closes the server, which returns once every decision it handed
// out came back, and checks that none is left on a loop's queue.
func (w *waitingProxy) stop(t *testing.T) {
	t.Helper()
	w.s.Close()
	for _, l := range w.s.running {
		if n := len(l.decisions.ready); n > 0 {
			t.Errorf("%d decisions left on a loop's queue after Close", n)
		}
	}
}

// onlyRecord checks that the server, stopped, recorded exactly one
// request, and returns it.
func (w *waitingProxy) onlyRecord(t *testing.T) metrics.Record {
	t.Helper()
	all := w.recs.All()
	if len(all) != 1 {
		t.Fatalf("%d records, want exactly one: %+v", len(all), all)
	}
	return all[0]
}

// answerStatus reads one answer from conn and returns its status.
func answerStatus(t *testing.T, conn net.Conn) int {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// closedByServer reads conn until the server closes it; it fails on
// anything but the close (a read deadline past, an answer).
func closedByServer(t *testing.T, conn net.Conn) {
	t.Helper()
	n, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if n > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("want the connection closed with nothing sent, read %d bytes, %v", n, err)
	}
}

// A decision waiting on Redis leaves its loop free: another connection
// on the same, only, loop is served meanwhile. With the decision on the
// loop, the loop stalled until Redis answered, and this test failed.
func TestWaitingDecisionLeavesTheLoopServing(t *testing.T) {
	w := startWaitingProxy(t, 5*time.Second)
	held := w.holdDecision(t)
	if status := answerStatus(t, edgetest.SendGet(t, w.addr, "/free")); status != 200 {
		t.Fatalf("GET /free while a decision waits: %d", status)
	}
	w.redis.Resume()
	if status := answerStatus(t, held); status != 200 {
		t.Fatalf("GET /limited once Redis answers: %d", status)
	}
	w.recs.Last(t, 2)
}

// A client that leaves while its decision is out (here: it shuts its
// side, which the loop reads as its end) has its connection closed at
// once, and is recorded once, as a client that went away, when the
// decision comes back; its request never goes upstream.
func TestClientLeavesWhileDeciding(t *testing.T) {
	w := startWaitingProxy(t, 5*time.Second)
	held := w.holdDecision(t)
	if err := held.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, held)
	w.redis.Resume()
	w.recs.Last(t, 1)
	w.stop(t)
	if r := w.onlyRecord(t); r.ErrorCategory != metrics.ErrorClient {
		t.Errorf("record of the abandoned request: %+v, want a client error", r)
	}
	if n := w.served.Load(); n != 0 {
		t.Errorf("the upstream served %d requests, want none: the abandoned request went upstream", n)
	}
}

// A drain waits for a request whose decision is out, forwards and answers
// it, and refuses new connections meanwhile.
func TestDrainWhileDeciding(t *testing.T) {
	w := startWaitingProxy(t, 5*time.Second)
	held := w.holdDecision(t)
	drained := make(chan error, 1)
	go func() { drained <- w.s.Shutdown(context.Background()) }()
	edgetest.Poll(t, 10*time.Second, "the listener closed by the drain", func() bool {
		c, err := net.Dial("tcp", w.addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	w.redis.Resume()
	if status := answerStatus(t, held); status != 200 {
		t.Fatalf("GET /limited, drained: %d", status)
	}
	if err := <-drained; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	w.stop(t)
	if r := w.onlyRecord(t); r.Status != 200 {
		t.Errorf("record: %+v, want the 200 answered", r)
	}
}

// A stop at once closes the connection whose decision is out; Close
// returns once the decision came back, which is recorded once, as
// abandoned.
func TestStopWhileDeciding(t *testing.T) {
	w := startWaitingProxy(t, 5*time.Second)
	held := w.holdDecision(t)
	stopped := make(chan struct{})
	go func() { w.s.Close(); close(stopped) }()
	closedByServer(t, held)
	select {
	case <-stopped:
		t.Fatal("Close returned while a decision was out")
	default:
	}
	w.redis.Resume()
	<-stopped
	w.stop(t)
	if r := w.onlyRecord(t); r.ErrorCategory != metrics.ErrorClient {
		t.Errorf("record of the request stopped: %+v, want a client error", r)
	}
}

// write_timeout bounds a decision too: the connection whose decision
// waits past it is closed, and the request recorded once when the
// decision comes back.
func TestDeadlineWhileDeciding(t *testing.T) {
	w := startWaitingProxy(t, 300*time.Millisecond)
	held := w.holdDecision(t)
	closedByServer(t, held)
	w.redis.Resume()
	w.recs.Last(t, 1)
	w.stop(t)
	if r := w.onlyRecord(t); r.ErrorCategory != metrics.ErrorClient {
		t.Errorf("record of the request past its deadline: %+v, want a client error", r)
	}
}
