-- allowScript of the version before the grouped reply (limiter/redis_script.go at
-- main 4b9656b), for TestRedisScriptsOfTwoVersions: a rolling upgrade runs both.
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
