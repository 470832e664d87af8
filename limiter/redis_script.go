package limiter

import "github.com/redis/go-redis/v9"

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
// It returns Redis's clock (now), then, per decision, {reason (0:
// admitted), hour full, minute full, route full, monthly used, wait (-1:
// never)}: scriptReply values for one decision, 1 + 6 a decision for more
// (replyNow, replyReason, ... name them). now comes once, and "allowed" is reason 0: a reply of 30 decisions
// is 181 integers, not 240, for Redis to write and the client to read.
// It mirrors bucket.rescale, wait and take.
//
// A group is several requests of one subject with the same keys and
// arguments, sent once and decided one after the other, so 30 requests
// of a subject cost Redis one set of keys and arguments to read, not 30.
// A key is read at its first use in the call and written once at the
// end, with the values the last decision that changed it left. A key
// expires once its buckets are full again, so idle subjects cost Redis
// nothing.
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

const allowScriptSource = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local HOUR, MINUTE = 3600000000, 60000000
local floor, max, ceil = math.floor, math.max, math.ceil
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
end

for g = 0, #KEYS / 3 - 1 do
  local k, a = g * 3, g * 8
  local cost = tonumber(ARGV[a+2])
  local hourCap, minuteCap, routeCap = tonumber(ARGV[a+3]), tonumber(ARGV[a+4]), tonumber(ARGV[a+5])
  local quota, dayStart = tonumber(ARGV[a+6]), tonumber(ARGV[a+7])
  -- A capacity of 0 gives an infinite interval, which check never reaches.
  local hourEvery, minuteEvery, routeEvery = floor(HOUR / hourCap), floor(MINUTE / minuteCap), floor(MINUTE / routeCap)
  for _ = 1, tonumber(ARGV[a+1]) do
    decide(KEYS[k+1], KEYS[k+2], KEYS[k+3], cost, hourCap, minuteCap, routeCap, quota, dayStart, ARGV[a+8],
      hourEvery, minuteEvery, routeEvery)
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
