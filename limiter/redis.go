package limiter

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/apiwarden/apiwarden/internal/lifecycle"
)

// Defaults for RedisOptions.
const (
	DefaultRedisPrefix           = "apiwarden:rl:"
	DefaultRedisTimeout          = 50 * time.Millisecond
	DefaultRedisFailureThreshold = 3
	DefaultRedisCoolDown         = 5 * time.Second
)

// RedisOptions configure NewRedis.
type RedisOptions struct {
	// Client is the connection to use. When nil, URL is dialled with
	// timeouts of Timeout and no retries, and Close closes that client. A
	// Client passed in should likewise have short timeouts and MaxRetries -1.
	Client redis.UniversalClient
	// URL is a redis:// or rediss:// URL, used when Client is nil.
	URL string
	// Prefix starts every key; DefaultRedisPrefix when empty.
	Prefix string
	// Timeout bounds each decision's wait for Redis, from its arrival:
	// queued behind a round trip in flight, then its own; DefaultRedisTimeout
	// when 0.
	Timeout time.Duration
	// FailureThreshold is the number of consecutive failed calls that
	// open the circuit breaker; DefaultRedisFailureThreshold when 0.
	FailureThreshold int
	// CoolDown is how long the breaker stays open before one call probes
	// Redis again; DefaultRedisCoolDown when 0.
	CoolDown time.Duration
	// Logger receives breaker transitions; nil uses the local limiter's.
	Logger *slog.Logger
}

// Redis shares buckets between every instance that uses the same Redis.
// Each decision is one Lua script that reads Redis's clock (TIME), checks
// the subject's hour, minute and route buckets and monthly counter, and
// debits all of them or none, atomically; keys expire once their buckets
// are full again, so idle subjects cost Redis nothing.
//
// The arithmetic is the local Limiter's, in microseconds: the same tiers,
// calendar scaling, clamping on capacity changes, unknown-tier rule and
// Result. The tiers and calendar are the local limiter's (SetTiers and
// SetCalendar on it apply here too), and the now passed to AllowAt picks
// the calendar day and month; the buckets run on Redis's clock.
//
// Concurrent decisions share round trips: the decisions of the requests
// that arrive while one is in flight go together in one script call (a
// pipeline on a cluster), in arrival order per subject, and each is still
// atomic (see scriptBatcher). A lone request is sent at once.
//
// When Redis fails or is slower than the timeout, the request is decided
// by the local limiter instead and counted as a fallback; after
// FailureThreshold consecutive failures the circuit breaker stops trying
// for CoolDown, then probes, with the next request or with a PING from
// Run's timer, whichever comes first, and returns to the shared buckets
// when the probe succeeds. Run it, so an idle instance notices Redis is
// back within one CoolDown. During an outage each instance enforces its
// own buckets, so together they may admit up to one capacity each.
//
// Over, Sweep and Snapshot remain the local limiter's: they see only the
// decisions made during fallbacks. Shared state lives in Redis, with its
// own persistence.
//
// A Redis is safe for concurrent use.
type Redis struct {
	client     redis.UniversalClient
	ownsClient bool
	local      *Limiter
	prefix     string
	timeout    time.Duration
	log        *slog.Logger
	breaker    breaker
	batch      *scriptBatcher  // sends the decisions' scripts
	life       lifecycle.State // of Run, the timer that probes an open breaker

	calls     atomic.Uint64
	failures  atomic.Uint64
	fallbacks atomic.Uint64
}

// NewRedis returns a Redis backend that falls back to local. It does not
// contact Redis: an unreachable server shows up as fallbacks, not as an
// error here.
//
// It returns an error wrapping ErrInvalidOptions when local is nil, when
// neither Client nor URL is set, when URL does not parse, or when a
// duration or threshold is negative.
func NewRedis(local *Limiter, opts RedisOptions) (*Redis, error) {
	switch {
	case local == nil:
		return nil, fmt.Errorf("%w: NewRedis needs a local limiter to fall back to", ErrInvalidOptions)
	case opts.Timeout < 0 || opts.CoolDown < 0 || opts.FailureThreshold < 0:
		return nil, fmt.Errorf("%w: redis Timeout, CoolDown and FailureThreshold must be >= 0", ErrInvalidOptions)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultRedisTimeout
	}
	if opts.FailureThreshold == 0 {
		opts.FailureThreshold = DefaultRedisFailureThreshold
	}
	if opts.CoolDown == 0 {
		opts.CoolDown = DefaultRedisCoolDown
	}
	if opts.Logger == nil {
		opts.Logger = local.log
	}
	r := &Redis{
		client:  opts.Client,
		local:   local,
		prefix:  opts.Prefix,
		timeout: opts.Timeout,
		log:     opts.Logger,
	}
	r.breaker.threshold = int32(min(opts.FailureThreshold, 1<<30))
	r.breaker.coolDown = opts.CoolDown
	if r.client == nil {
		if opts.URL == "" {
			return nil, fmt.Errorf("%w: set RedisOptions.Client or URL", ErrInvalidOptions)
		}
		o, err := redis.ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: redis url: %v", ErrInvalidOptions, err)
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = opts.Timeout, opts.Timeout, opts.Timeout, opts.Timeout
		o.MaxRetries = -1
		o.DialerRetries = 1 // a refused connection fails now, not after backoff
		o.ContextTimeoutEnabled = true
		o.DisableIdentity = true // CLIENT SETINFO is unknown before Redis 7.2
		// Maintenance notifications are a managed-Redis feature; asking
		// for them on every new connection costs a round trip that
		// Redis 7 answers with an error.
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		r.client, r.ownsClient = redis.NewClient(o), true
	}
	r.batch = newScriptBatcher(r.client, r.prefix)
	return r, nil
}

// Close closes the client NewRedis dialled from URL; a Client passed in is
// left open.
func (r *Redis) Close() error {
	if r.ownsClient {
		return r.client.Close()
	}
	return nil
}

// Ping checks that Redis answers within the timeout, for start-up checks
// and readiness probes. It does not change the circuit breaker.
//
// It returns an error wrapping ErrRedisUnavailable when Redis does not answer.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrRedisUnavailable, err)
	}
	return nil
}

// Healthy reports whether decisions currently use the shared buckets: the
// circuit breaker is closed. It is false while the breaker is open or a
// probe is in flight.
func (r *Redis) Healthy() bool { return r.breaker.state.Load() == breakerClosed }

// RedisStats is a reading of the Redis backend's counters for monitoring.
type RedisStats struct {
	Healthy      bool
	Breaker      string // "closed", "open" or "half-open"
	Calls        uint64 // scripts sent to Redis
	RoundTrips   uint64 // round trips that carried AllowAt's scripts, one or a pipeline of several
	Failures     uint64 // of which failed or timed out
	Fallbacks    uint64 // decisions made by the local limiter instead
	BreakerOpens uint64 // times the breaker opened
}

// Stats reads the counters.
func (r *Redis) Stats() RedisStats {
	s := r.breaker.state.Load()
	return RedisStats{
		Healthy:      s == breakerClosed,
		Breaker:      breakerStateName(s),
		Calls:        r.calls.Load(),
		RoundTrips:   r.batch.roundTrips.Load(),
		Failures:     r.failures.Load(),
		Fallbacks:    r.fallbacks.Load(),
		BreakerOpens: r.breaker.opens.Load(),
	}
}

// Local returns the limiter Redis falls back to.
func (r *Redis) Local() *Limiter { return r.local }

// Allow is AllowAt at the local limiter's clock.
func (r *Redis) Allow(req Request) Result { return r.AllowAt(r.local.now(), req) }

// peekScript reads a subject's tier buckets and counter without changing
// them: KEYS as allowScript's 1 and 3. It returns {now, h, hc, m, mc, c, used}.
var peekScript = redis.NewScript(`
local t = redis.call('TIME')
local v = redis.call('HMGET', KEYS[1], 'h', 'hc', 'm', 'mc', 'c')
local function num(x) return tonumber(x) or 0 end
return {tonumber(t[1]) * 1000000 + tonumber(t[2]), num(v[1]), num(v[2]), num(v[3]), num(v[4]), num(v[5]),
  num(redis.call('GET', KEYS[2]))}
`)

// Keys share the hash tag {subject}, so a cluster keeps a subject's keys
// in one slot, as a multi-key script needs.
func (r *Redis) tierKey(subject Subject) string { return tierKey(r.prefix, subject) }
func (r *Redis) routeKey(subject Subject, route RouteBucket) string {
	return routeKey(r.prefix, subject, route)
}
func (r *Redis) monthKey(subject Subject, month int32) string {
	return monthKey(r.prefix, subject, month)
}

func tierKey(prefix string, subject Subject) string { return prefix + "{" + string(subject) + "}" }
func routeKey(prefix string, subject Subject, route RouteBucket) string {
	return prefix + "{" + string(subject) + "}:r:" + string(route)
}
func monthKey(prefix string, subject Subject, month int32) string {
	m := int(month)%12 + 1
	pad := ""
	if m < 10 {
		pad = "0"
	}
	return prefix + "{" + string(subject) + "}:m:" + strconv.Itoa(int(month)/12) + "-" + pad + strconv.Itoa(m)
}

// microLimit is a limit with the same arithmetic in microseconds, the
// unit of Redis's TIME: its window field holds microseconds.
func microLimit(capacity int64, window time.Duration) limit {
	return newLimit(capacity, window/time.Microsecond)
}

// microState describes a bucket whose times are in microseconds.
func microState(policy string, b bucket, lim limit, window time.Duration, now int64) BucketState {
	s := b.state(policy, lim, now)
	s.Window, s.Reset = window, s.Reset*time.Microsecond
	return s
}

// AllowAt decides req on the shared buckets, or on the local limiter when
// Redis is unavailable. now picks the calendar day and month; the buckets
// use Redis's clock.
func (r *Redis) AllowAt(now time.Time, req Request) Result {
	at := now.UnixNano()
	if !r.breaker.allow(at) {
		r.fallbacks.Add(1)
		return r.local.AllowAt(now, req)
	}
	v := r.local.viewAt(now)
	tl := v.lookup(req.Tier)
	cost := int64(max(req.Cost, 1))
	useTier := !req.RouteOnly
	useRoute := req.Route != "" && req.RoutePerMinute > 0
	var hour, minute, route limit
	var hourCap, minuteCap, routeCap int64
	if useTier {
		hour, minute = microLimit(tl.hour.capacity, HourWindow), microLimit(tl.minute.capacity, MinuteWindow)
		hourCap, minuteCap = hour.capacity, minute.capacity
	}
	in := scriptInput{subject: req.Subject, month: v.day.monthID}
	if useRoute {
		route = microLimit(req.RoutePerMinute, RouteWindow)
		routeCap, in.route = route.capacity, req.Route
	}
	monthEnd := time.Unix(0, v.day.monthEnd)
	in.args = [scriptArgs]int64{cost, hourCap, minuteCap, routeCap, tl.quota, v.day.start / 1000, monthEnd.Add(24 * time.Hour).Unix()}

	vals, err := r.batch.run(req.Subject, &in, time.Now().Add(r.timeout))
	r.calls.Add(1)
	if err != nil {
		r.failed(at, err)
		r.fallbacks.Add(1)
		return r.local.AllowAt(now, req)
	}
	r.succeeded()

	redisNow := vals[replyNow]
	res := Result{Allowed: vals[replyReason] == 0, Reason: Reason(vals[replyReason])}
	if useTier {
		res.Buckets[0] = microState(PolicyHour, bucket{full: vals[replyHour], capacity: hourCap}, hour, HourWindow, redisNow)
		res.Buckets[1] = microState(PolicyMinute, bucket{full: vals[replyMinute], capacity: minuteCap}, minute, MinuteWindow, redisNow)
		res.NumBuckets = 2
	}
	if useRoute {
		res.Buckets[res.NumBuckets] = microState(PolicyRoute, bucket{full: vals[replyRoute], capacity: routeCap}, route, RouteWindow, redisNow)
		res.NumBuckets++
	}
	if !res.Allowed {
		if vals[replyWait] < 0 {
			res.RetryAfter = InfDuration
		} else {
			res.RetryAfter = time.Duration(vals[replyWait]) * time.Microsecond
		}
		if res.Reason == ReasonQuotaExceeded {
			res.RetryAfter = max(res.RetryAfter, time.Duration(v.day.monthEnd-redisNow*1000))
		}
	}
	if tl.quota > 0 {
		res.MonthlyQuota, res.MonthlyUsed = tl.quota, vals[replyUsed]
	}
	return res
}

// Peek reads subject's shared buckets and monthly counter under tier
// without consuming, or the local limiter's when Redis is unavailable.
func (r *Redis) Peek(now time.Time, subject Subject, tier string) Usage {
	at := now.UnixNano()
	if !r.breaker.allow(at) {
		return r.local.Peek(now, subject, tier)
	}
	v := r.local.viewAt(now)
	tl := v.lookup(tier)
	keys := []string{r.tierKey(subject), r.monthKey(subject, v.day.monthID)}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	vals, err := peekScript.RunRO(ctx, r.client, keys).Int64Slice()
	cancel()
	r.calls.Add(1)
	if err == nil && len(vals) != 7 {
		err = fmt.Errorf("unexpected reply %v", vals)
	}
	if err != nil {
		r.failed(at, err)
		return r.local.Peek(now, subject, tier)
	}
	r.succeeded()
	redisNow := vals[0]
	from := max(v.day.start/1000, vals[5])
	hour, minute := microLimit(tl.hour.capacity, HourWindow), microLimit(tl.minute.capacity, MinuteWindow)
	u := Usage{
		Tier:         tl.name,
		Hour:         microState(PolicyHour, bucket{full: vals[1], capacity: vals[2]}.rescale(hour, from, redisNow), hour, HourWindow, redisNow),
		Minute:       microState(PolicyMinute, bucket{full: vals[3], capacity: vals[4]}.rescale(minute, from, redisNow), minute, MinuteWindow, redisNow),
		MonthlyQuota: tl.quota,
		MonthlyReset: time.Duration(v.day.monthEnd - redisNow*1000),
	}
	if tl.quota > 0 {
		u.MonthlyUsed = vals[6]
	}
	return u
}

func (r *Redis) failed(at int64, err error) {
	r.failures.Add(1)
	if r.breaker.failure(at) {
		r.log.Warn("limiter: redis unavailable, deciding locally", "err", err, "retry_in", r.breaker.coolDown)
	}
}

func (r *Redis) succeeded() {
	if r.breaker.success() {
		r.log.Info("limiter: redis is back, using shared buckets")
	}
}
