package limiter

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apiwarden/apiwarden/store"
)

// MergeCounts is what MergeStored did (or, in a dry run, would do) with
// the bucket states a data file holds.
type MergeCounts struct {
	Total     int // records in the file
	Merged    int // subjects whose shared buckets took the file's state
	Unchanged int // subjects Redis has as far spent already, or measured against other limits
	Idle      int // records with nothing left to carry: full again by now, or last month's counter
}

// mergeScript merges one stored subject into the shared buckets, with the
// key layout and units of allowScript (microseconds on Redis's clock).
//
//	KEYS    tier buckets, route bucket, monthly counter (allowScript's)
//	ARGV    h, hc, m, mc (hc 0: no tier buckets), r, rc (rc 0: no route bucket),
//	        c, monthly used (0: none), unix seconds the counter may expire, dry (1: write nothing)
//
// A bucket measured against the same capacity keeps the later full-again
// instant of the two, the more spent; one Redis measured against another
// capacity, or one full again by now, is left as Redis has it. The
// counter keeps the larger count. It returns 1 when it changed (or would
// change) anything. Merging twice is merging once.
var mergeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function num(v) return tonumber(v) or 0 end
local function str(v) return string.format('%.0f', v) end
local c, used, dry = num(ARGV[7]), num(ARGV[8]), ARGV[10] == '1'
local changed = 0

-- merge one hash of buckets: names are field pairs {full, capacity}.
local function merge(key, names, full, caps)
  local latest = 0
  for i = 1, #full do latest = math.max(latest, full[i]) end
  if caps[1] == 0 or latest <= now then return end
  local fields = {}
  for i = 1, #names do fields[#fields + 1] = names[i][1]; fields[#fields + 1] = names[i][2] end
  fields[#fields + 1] = 'c'
  local v = redis.call('HMGET', key, unpack(fields))
  local out, write, cc = {}, true, c
  if v[2] then
    write = false
    for i = 1, #names do
      if num(v[2 * i]) ~= caps[i] then return end
    end
    for i = 1, #names do
      out[i] = math.max(num(v[2 * i - 1]), full[i])
      if out[i] ~= num(v[2 * i - 1]) then write = true end
    end
    cc = math.max(c, num(v[#v]))
  else
    out = full
  end
  if not write then return end
  changed = 1
  if dry then return end
  local args, last = {}, 0
  for i = 1, #names do
    args[#args + 1] = names[i][1]; args[#args + 1] = str(out[i])
    args[#args + 1] = names[i][2]; args[#args + 1] = str(caps[i])
    last = math.max(last, out[i])
  end
  args[#args + 1] = 'c'; args[#args + 1] = str(cc)
  redis.call('HSET', key, unpack(args))
  redis.call('PEXPIRE', key, str(math.max(math.ceil((last - now) / 1000), 1000)))
end

merge(KEYS[1], {{'h', 'hc'}, {'m', 'mc'}}, {num(ARGV[1]), num(ARGV[3])}, {num(ARGV[2]), num(ARGV[4])})
merge(KEYS[2], {{'r', 'rc'}}, {num(ARGV[5])}, {num(ARGV[6])})
if used > 0 and used > num(redis.call('GET', KEYS[3])) then
  changed = 1
  if not dry then
    redis.call('SET', KEYS[3], str(used))
    redis.call('EXPIREAT', KEYS[3], ARGV[9])
  end
end
return changed
`)

// MergeStored merges the bucket states a single instance's limiter saved
// in st (its Snapshot records; st may be read-only) into the shared
// buckets in Redis, so moving to a cluster does not give every client a
// fresh allowance. Each record is one script, atomic on Redis, safe while
// instances decide on the same buckets: see mergeScript for the rule,
// which never makes a bucket less spent than either side had it. States
// are judged at now (the calendar month; buckets by Redis's clock).
// dryRun counts without writing. progress, when set, is called after
// each record with the number done and the total.
//
// It returns an error wrapping ErrRedisUnavailable when a call fails, and
// ErrCorruptRecord for a record it cannot read; what was merged before
// stays merged.
func (r *Redis) MergeStored(ctx context.Context, st *store.Store, now time.Time, dryRun bool, progress func(done, total int)) (MergeCounts, error) {
	var n MergeCounts
	v := r.local.viewAt(now)
	monthExpiry := time.Unix(0, v.day.monthEnd).Add(24 * time.Hour).Unix()
	dry := 0
	if dryRun {
		dry = 1
	}
	err := st.View(func(tx *store.Tx) error {
		bk := tx.Bucket(store.BucketLimiter)
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n.Total++
		}
		for k, val := c.First(); k != nil; k, val = c.Next() {
			e, err := decodeRecord(k, val)
			if err != nil {
				return err
			}
			if e.month != v.day.monthID {
				e.used = 0 // a past month's counter is never read again
			}
			merged, err := r.mergeEntry(ctx, e, monthExpiry, dry)
			switch {
			case err != nil:
				return err
			case merged == 1:
				n.Merged++
			case e.idle(now.UnixNano(), v.day.monthID):
				n.Idle++
			default:
				n.Unchanged++
			}
			if progress != nil {
				progress(n.Merged+n.Unchanged+n.Idle, n.Total)
			}
		}
		return nil
	})
	return n, err
}

// mergeEntry runs mergeScript for one stored entry; it returns 1 when the
// script changed (or would change) Redis.
func (r *Redis) mergeEntry(ctx context.Context, e *entry, monthExpiry int64, dry int) (int64, error) {
	in := scriptInput{subject: e.key.subject, route: e.key.route, month: e.month}
	k := in.keys(r.prefix)
	keys := k[:]
	micros := func(ns int64) int64 { return (ns + 999) / 1000 } // round up: never less spent
	args := []any{
		micros(e.hour.full), e.hour.capacity, micros(e.minute.full), e.minute.capacity,
		micros(e.route.full), e.route.capacity, e.changed / 1000, e.used, monthExpiry, dry,
	}
	ctx, cancel := context.WithTimeout(ctx, max(r.timeout, time.Second))
	defer cancel()
	merged, err := mergeScript.Run(ctx, r.client, keys, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrRedisUnavailable, err)
	}
	return merged, nil
}
