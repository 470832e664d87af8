package limiter

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// allowScript makes one or more decisions, in order, atomically. All
// times are unix microseconds on Redis's clock, read once per call: the
// decisions of one call are made at the same instant.
//
//	KEYS    per group of identical decisions, 3 keys:
//	        tier buckets (hash: h, hc = hour full-at and capacity; m, mc = minute; c = last change)
//	        route bucket (hash: r, rc, c)
//	        monthly counter
//	ARGV    per group, 8 arguments: how many decisions (at least 1),
//	        then scriptArgs: cost, hour capacity (0: tier buckets do not
//	        apply), minute capacity, route capacity (0: none), monthly
//	        quota (0: none), start of the local calendar day, unix
//	        seconds when the counter may expire
//
// It returns Redis's clock (now), then, per group, the values of its
// first decision {reason (0: admitted), hour full, minute full, route
// full, monthly used, wait (-1: never)} (replyReason, ... name them);
// for a group of more than one, then how many of its decisions were
// admitted (a run from the first: a denial changes nothing, so the rest
// are denied alike), and, when that run is neither 0 nor all, the values
// of the first denied decision. A decision of the run after the first
// differs from it only by its debits (scriptBatcher.spread works them
// out), so a group of 30 replies with at most 14 integers, not 180, for
// Redis to write and the client to read, and the script decides at most
// its first and first denied one on their own: the run between is one
// step (admitMore). A call of one decision replies scriptReply values.
// It mirrors bucket.rescale, wait and take.
//
// A group is several requests of one subject with the same keys and
// arguments, sent once and decided one after the other, so 30 requests
// of a subject cost Redis one set of keys and arguments to read, not 30.
// A key is read at its first use in the call and written once at the
// end, with the values the last decision that changed it left. A key
// expires once its buckets are full again, so idle subjects cost Redis
// nothing.
//
// The keys and what they hold are those of every earlier version
// (TestRedisStoredFormat), so instances of this and the previous script
// share one Redis during a rolling upgrade (TestRedisScriptsOfTwoVersions).
var allowScript = redis.NewScript(allowScriptSource)

// The shape of one decision in allowScript, and of its reply: scriptReply
// values, now and then the decision's (replyReason, ...).
const (
	scriptKeys        = 3
	scriptArgs        = 7
	scriptReply       = 7
	scriptPerCall     = 1               // now, once a call
	scriptPerDecision = scriptReply - 1 // a decision's values after now
)

// The values of one decision's reply.
const (
	replyNow = iota
	replyReason
	replyHour
	replyMinute
	replyRoute
	replyUsed
	replyWait
)

// The arguments of one decision, scriptInput.args.
const (
	argCost = iota
	argHourCap
	argMinuteCap
	argRouteCap
	argQuota
	argDayStart
	argExpireAt
)

// scriptInput is one decision's keys and arguments for allowScript: the
// keys are those of subject, route ("" when no route bucket applies) and
// month (the calendar month of the counter), built once per group. Two
// decisions with equal inputs may go as one group.
type scriptInput struct {
	subject Subject
	route   RouteBucket
	month   int32
	args    [scriptArgs]int64
}

// keys returns in's keys under prefix: tier buckets, route bucket (the
// tier key when no route applies: a cluster wants every key in the slot),
// monthly counter.
func (in *scriptInput) keys(prefix string) [scriptKeys]string {
	tier := tierKey(prefix, in.subject)
	route := tier
	if in.route != "" {
		route = routeKey(prefix, in.subject, in.route)
	}
	return [scriptKeys]string{tier, route, monthKey(prefix, in.subject, in.month)}
}

// appendGroup appends to keys and args a group of n decisions of in, its
// keys under prefix.
func (in *scriptInput) appendGroup(prefix string, keys []string, args []any, n int) ([]string, []any) {
	k := in.keys(prefix)
	keys = append(keys, k[:]...)
	args = append(args, n)
	for _, a := range in.args {
		args = append(args, a)
	}
	return keys, args
}

// groupLen is how many calls at the head of calls go to allowScript as
// one group: the first and those after it with equal inputs.
func groupLen(calls []*scriptCall) int {
	n := 1
	for n < len(calls) && calls[n].in == calls[0].in {
		n++
	}
	return n
}

// spread sets the reply of each of calls from vals, allowScript's reply
// to calls sent in groups (groupLen), as callBatch sends them: a group's
// admitted run from its first decision's values and debits, the rest
// from its first denied decision's. It returns an error when vals is not
// of that shape; the calls' replies are then not to be read.
func spread(calls []*scriptCall, vals []int64) error {
	bad := func() error {
		return fmt.Errorf("unexpected batch reply of %d values for %d decisions", len(vals), len(calls))
	}
	if len(vals) < scriptPerCall {
		return bad()
	}
	pos := scriptPerCall
	next := func() []int64 { // the next decision's values
		if len(vals) < pos+scriptPerDecision {
			return nil
		}
		pos += scriptPerDecision
		return vals[pos-scriptPerDecision : pos]
	}
	for i := 0; i < len(calls); {
		group := calls[i : i+groupLen(calls[i:])]
		i += len(group)
		first := next()
		if first == nil {
			return bad()
		}
		run, denied := int64(0), first
		if first[0] == 0 {
			run = 1
		}
		if len(group) > 1 {
			if pos == len(vals) {
				return bad()
			}
			run, pos = vals[pos], pos+1
			if run < 0 || run > int64(len(group)) || (run > 0) != (first[0] == 0) {
				return bad()
			}
			if run > 0 && run < int64(len(group)) {
				if denied = next(); denied == nil {
					return bad()
				}
			}
		}
		for j, c := range group {
			c.vals[replyNow] = vals[replyNow]
			if int64(j) < run {
				copy(c.vals[replyReason:], first)
				c.in.debit(&c.vals, int64(j))
			} else {
				copy(c.vals[replyReason:], denied)
			}
		}
	}
	if pos != len(vals) {
		return bad()
	}
	return nil
}

// debit adds to vals, the reply of an admitted decision of in, the debits
// of times more decisions like it admitted after it: allowScript's take,
// with microLimit's refill intervals, which the script's are.
func (in *scriptInput) debit(vals *[scriptReply]int64, times int64) {
	if times == 0 {
		return
	}
	cost := in.args[argCost] * times
	if c := in.args[argHourCap]; c > 0 {
		vals[replyHour] += cost * microLimit(c, HourWindow).interval
		vals[replyMinute] += cost * microLimit(in.args[argMinuteCap], MinuteWindow).interval
	}
	if c := in.args[argRouteCap]; c > 0 {
		vals[replyRoute] += cost * microLimit(c, RouteWindow).interval
	}
	if in.args[argQuota] > 0 {
		vals[replyUsed] += cost
	}
}

const allowScriptSource = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local HOUR, MINUTE = 3600000000, 60000000
local floor, max, min, ceil = math.floor, math.max, math.min, math.ceil
local function num(v) return tonumber(v) or 0 end
local function str(v) return string.format('%.0f', v) end

local function rescale(full, cap, newcap, window, from)
  if cap == newcap then return full end
  if cap == 0 then return 0 end
  if from > now then from = now end
  local tokens = cap
  if full - from > 0 then tokens = cap - (full - from) / floor(window / cap) end
  if tokens > newcap then tokens = newcap end
  if tokens < 0 then tokens = 0 end
  local missing = newcap - tokens
  if missing > 0 then return from + floor(missing * floor(window / newcap) + 0.5) end
  return 0
end

-- check returns the longer of wait and the time until cost fits in the
-- bucket, or false (never) when cost is over its capacity or wait is false.
-- interval is floor(window / cap), the time one token takes to refill,
-- worked out once a group: per decision it was five calls to floor.
local function check(wait, full, cap, interval, cost)
  if wait == false or cost > cap then return false end
  return max(wait, max(full, now) + cost * interval - now - cap * interval)
end
local function take(full, interval, cost)
  return max(full, now) + cost * interval
end

local tiers, routes, counters = {}, {}, {}
local function tierOf(key)
  local b = tiers[key]
  if not b then
    local v = redis.call('HMGET', key, 'h', 'hc', 'm', 'mc', 'c')
    b = {h = num(v[1]), hc = num(v[2]), m = num(v[3]), mc = num(v[4]), c = num(v[5])}
    tiers[key] = b
  end
  return b
end
local function routeOf(key)
  local b = routes[key]
  if not b then
    local v = redis.call('HMGET', key, 'r', 'rc', 'c')
    b = {r = num(v[1]), rc = num(v[2]), c = num(v[3])}
    routes[key] = b
  end
  return b
end
local function counterOf(key)
  local c = counters[key]
  if not c then
    c = {used = num(redis.call('GET', key)), add = 0}
    counters[key] = c
  end
  return c
end

local out, nout = {now}, 1
-- decide makes one decision, appends its values to out and returns
-- whether it admitted the request.
local function decide(tierKey, routeKey, counterKey, cost, hourCap, minuteCap, routeCap, quota, dayStart, expireAt, hourEvery, minuteEvery, routeEvery)
  local h, m, r, used, wait = 0, 0, 0, 0, 0
  local tb, rb, cnt, tierChanged, routeChanged
  if hourCap > 0 then
    tb = tierOf(tierKey)
    local from = max(dayStart, tb.c)
    h, m = tb.h, tb.m
    if tb.hc ~= hourCap then h = rescale(h, tb.hc, hourCap, HOUR, from); tierChanged = true end
    if tb.mc ~= minuteCap then m = rescale(m, tb.mc, minuteCap, MINUTE, from); tierChanged = true end
    wait = check(wait, h, hourCap, hourEvery, cost)
    wait = check(wait, m, minuteCap, minuteEvery, cost)
  end
  if routeCap > 0 then
    rb = routeOf(routeKey)
    r = rb.r
    if rb.rc ~= routeCap then r = rescale(r, rb.rc, routeCap, MINUTE, max(dayStart, rb.c)); routeChanged = true end
    wait = check(wait, r, routeCap, routeEvery, cost)
  end

  local allowed, reason = wait == 0, 0
  if not allowed then reason = 1 end
  if quota > 0 then
    cnt = counterOf(counterKey)
    used = cnt.used
    if used + cost > quota then allowed = false; reason = 2 end
  end
  if allowed then
    if hourCap > 0 then
      h, m = take(h, hourEvery, cost), take(m, minuteEvery, cost)
      tierChanged = true
    end
    if routeCap > 0 then
      r = take(r, routeEvery, cost)
      routeChanged = true
    end
    if quota > 0 then
      used = used + cost
      cnt.used, cnt.add, cnt.expireAt = used, cnt.add + cost, expireAt
    end
  end
  if tierChanged then tb.h, tb.hc, tb.m, tb.mc, tb.c, tb.dirty = h, hourCap, m, minuteCap, now, true end
  if routeChanged then rb.r, rb.rc, rb.c, rb.dirty = r, routeCap, now, true end
  local n = nout
  out[n+1], out[n+2], out[n+3], out[n+4], out[n+5], out[n+6] = reason, h, m, r, used, wait or -1
  nout = n + 6
  return allowed
end

-- room is how many more decisions of cost a bucket admits, one after the
-- other, once a decision has just debited it: its full-at time is past
-- now and its capacity the decision's, so each further decision admitted
-- moves full by cost * every, and the next fits while full + cost *
-- every <= now + cap * every (check). The operands are integers under
-- 2^53, so the division is exact enough for floor.
local function room(full, cap, every, cost)
  return floor((now + cap * every - full) / (cost * every))
end

-- admitMore admits, in one step, the decisions of a group that follow
-- one decide just admitted, as many of n as decide would admit one after
-- the other (each bucket and the quota allows a prefix of them; the
-- shortest one wins), and returns how many.
local function admitMore(tierKey, routeKey, counterKey, n, cost, hourCap, minuteCap, routeCap, quota, hourEvery, minuteEvery, routeEvery)
  local tb, rb, cnt
  if hourCap > 0 then
    tb = tiers[tierKey]
    n = min(n, room(tb.h, hourCap, hourEvery, cost), room(tb.m, minuteCap, minuteEvery, cost))
  end
  if routeCap > 0 then
    rb = routes[routeKey]
    n = min(n, room(rb.r, routeCap, routeEvery, cost))
  end
  if quota > 0 then
    cnt = counters[counterKey]
    n = min(n, floor((quota - cnt.used) / cost))
  end
  if n <= 0 then return 0 end
  local debit = n * cost
  if tb then tb.h, tb.m = tb.h + debit * hourEvery, tb.m + debit * minuteEvery end
  if rb then rb.r = rb.r + debit * routeEvery end
  if cnt then cnt.used, cnt.add = cnt.used + debit, cnt.add + debit end
  return n
end

-- A group's n decisions, one after the other: a run of admitted ones,
-- then denied ones, all alike, since a denial changes nothing. decide
-- makes the first, admitMore the rest of the run, decide the first
-- denied one; the Go side derives the others (scriptBatcher.spread).
for g = 0, #KEYS / 3 - 1 do
  local k, a = g * 3, g * 8
  local n, cost = tonumber(ARGV[a+1]), tonumber(ARGV[a+2])
  local hourCap, minuteCap, routeCap = tonumber(ARGV[a+3]), tonumber(ARGV[a+4]), tonumber(ARGV[a+5])
  local quota, dayStart, expireAt = tonumber(ARGV[a+6]), tonumber(ARGV[a+7]), ARGV[a+8]
  local tierKey, routeKey, counterKey = KEYS[k+1], KEYS[k+2], KEYS[k+3]
  -- A capacity of 0 gives an infinite interval, which check never reaches.
  local hourEvery, minuteEvery, routeEvery = floor(HOUR / hourCap), floor(MINUTE / minuteCap), floor(MINUTE / routeCap)
  local admitted = decide(tierKey, routeKey, counterKey, cost, hourCap, minuteCap, routeCap, quota, dayStart, expireAt,
    hourEvery, minuteEvery, routeEvery)
  if n > 1 then
    local run = 0
    if admitted then
      run = 1 + admitMore(tierKey, routeKey, counterKey, n - 1, cost, hourCap, minuteCap, routeCap, quota,
        hourEvery, minuteEvery, routeEvery)
    end
    nout = nout + 1
    out[nout] = run
    if run > 0 and run < n then
      decide(tierKey, routeKey, counterKey, cost, hourCap, minuteCap, routeCap, quota, dayStart, expireAt,
        hourEvery, minuteEvery, routeEvery)
    end
  end
end

-- A key expires when its buckets are full again: then it says nothing.
for key, b in pairs(tiers) do
  if b.dirty then
    redis.call('HSET', key, 'h', str(b.h), 'hc', str(b.hc), 'm', str(b.m), 'mc', str(b.mc), 'c', str(b.c))
    redis.call('PEXPIRE', key, str(max(ceil((max(b.h, b.m) - now) / 1000), 1000)))
  end
end
for key, b in pairs(routes) do
  if b.dirty then
    redis.call('HSET', key, 'r', str(b.r), 'rc', str(b.rc), 'c', str(b.c))
    redis.call('PEXPIRE', key, str(max(ceil((b.r - now) / 1000), 1000)))
  end
end
for key, c in pairs(counters) do
  if c.add > 0 then
    redis.call('INCRBY', key, str(c.add))
    redis.call('EXPIREAT', key, c.expireAt)
  end
end
return out
`
