#!/usr/bin/env bash
# evloop-redis-ab.sh MAIN_BIN NEW_BIN [ROUNDS] — the proxy in local and
# Redis mode on the event-loop edge (NEW_BIN) and on the fasthttp edge
# (MAIN_BIN), interleaved (docs/BENCHMARKS.md, "The event-loop edge with
# Redis (thirteenth session)"). Five instances, same configuration but
# for the edge and [redis] (timeout 1 s, so that a slow round trip on a
# loaded host does not fall back), in front of one upstream (UPSTREAM_BIN,
# a build of ../shared/bench/upstream) and one redis-server, all started
# here on ports from $PORT_BASE:
#   new-evloop-local  new-evloop-redis  main-fasthttp-redis
#   main-fasthttp-local  main-evloop-local (main's loops: local mode's A/B)
# Each round runs wrk -t1 -c64 against each, in an order rotated every
# round, and prints per instance: req/s, p99, its CPU a request
# (utime+stime from /proc/PID/stat over wrk's requests), redis-server's,
# and the load average. At the end: medians and ranges, and the ratios
# Redis/local of req/s on each edge. It fails when a Redis-mode instance
# fell back to its own buckets (that run measured local mode). Waits
# while /tmp/tasks13/QUIET exists (the lead measures).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/proxy-lib.sh"
main_bin=$(realpath "$1") new_bin=$(realpath "$2") rounds=${3:-8}
PORT_BASE=${PORT_BASE:-21300} DURATION=${DURATION:-8s}
UPSTREAM_BIN=${UPSTREAM_BIN:-/tmp/upstream}
token=bench-admin-token-0123456789abcdef secret=bench-key-secret-0123456789abcdef
export APIWARDEN_ADMIN_TOKEN=$token APIWARDEN_KEY_SECRET=$secret
scratch evloop-redis-ab
upstream=127.0.0.1:$PORT_BASE rport=$((PORT_BASE + 1))
"$UPSTREAM_BIN" -addr "$upstream" >"$work/upstream.log" 2>&1 & pids+=($!)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --loglevel warning \
  >"$work/redis.log" 2>&1 & pids+=($!); redis_pid=$!
for _ in $(seq 1 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
names=(new-evloop-local new-evloop-redis main-fasthttp-redis main-fasthttp-local main-evloop-local)
declare -A port pid key
i=0
for n in "${names[@]}"; do
  IFS=- read -r b edge mode <<<"$n"
  port[$n]=$((PORT_BASE + 10 + 2 * i)) i=$((i + 1))
  proxy_toml "$n" "127.0.0.1:${port[$n]}" "127.0.0.1:$((port[$n] + 1))" "$upstream" "$edge"
  [ "$mode" = redis ] && printf '\n[redis]\nurl = "redis://127.0.0.1:%s/0"\ntimeout = "1s"\n' "$rport" >>"$work/$n.toml"
  bin=$new_bin; [ "$b" = main ] && bin=$main_bin
  "$bin" serve -config "$work/$n.toml" >"$work/$n.log" 2>&1 & pids+=($!); pid[$n]=$!
done
for n in "${names[@]}"; do key[$n]=$(bench_key "$n" "127.0.0.1:$((port[$n] + 1))" "${pid[$n]}"); done
hz=$(getconf CLK_TCK)
run() { # NAME ROUND DURATION
  local before rbefore out f
  before=$(ticks "${pid[$1]}") rbefore=$(ticks "$redis_pid")
  out=$(wrk -t1 -c64 -d"$3" --latency -H "X-API-Key: ${key[$1]}" "http://127.0.0.1:${port[$1]}/bench" 2>&1)
  f=($(wrk_figures "$out"))
  awk -v r="$2" -v n="$1" -v rps="${f[0]}" -v p99="$(p99_ms "${f[1]}")" -v bad="${f[2]}" -v total="${f[3]}" \
    -v t="$(($(ticks "${pid[$1]}") - before))" -v rd="$(($(ticks "$redis_pid") - rbefore))" -v hz="$hz" \
    -v load="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN{ printf "round %d %-20s req/s %8.0f p99 %6s ms non2xx %s us/req %6.2f redis_us/req %5.2f load %s\n",
      r, n, rps, p99, bad, t/hz*1e6/total, rd/hz*1e6/total, load }'
}
for n in "${names[@]}"; do run "$n" 0 2s >/dev/null; done # warm-up
for r in $(seq 1 "$rounds"); do
  while [ -e /tmp/tasks13/QUIET ]; do sleep 20; done
  for j in "${!names[@]}"; do
    n=${names[$(((j + r) % ${#names[@]}))]}
    run "$n" "$r" "$DURATION" | tee -a "$work/lines"
  done
done
python3 - "$work/lines" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[2], []).append((float(f[4]), float(f[11]), float(f[6]), float(f[13])))
med = statistics.median
print("\nmedians (range)            req/s                     apiwarden us/req       p99 ms    redis us/req")
for n, rs in rows.items():
    rps, cpu, p99, rd = zip(*rs)
    print(f"{n:22s} {med(rps):8.0f} ({min(rps):.0f}-{max(rps):.0f})  {med(cpu):6.2f} ({min(cpu):.2f}-{max(cpu):.2f})  {med(p99):7.2f}  {med(rd):6.2f}")
m = {n: med([x[0] for x in rs]) for n, rs in rows.items()}
c = {n: med([x[1] for x in rs]) for n, rs in rows.items()}
print(f"req/s Redis/local: evloop (b/a) {m['new-evloop-redis']/m['new-evloop-local']:.2f}, fasthttp (c/d) {m['main-fasthttp-redis']/m['main-fasthttp-local']:.2f}, evloop Redis / fasthttp local {m['new-evloop-redis']/m['main-fasthttp-local']:.2f}")
print(f"local evloop, new/main: req/s {m['new-evloop-local']/m['main-evloop-local']:.3f}, CPU a request {c['new-evloop-local']/c['main-evloop-local']:.3f}")
PY
bad=0
for n in "${names[@]}"; do
  [[ $n == *-redis ]] || continue
  redis_fell_back "$n" "127.0.0.1:$((port[$n] + 1))" || bad=1
done
[ "$bad" = 0 ] || { echo "a Redis-mode instance fell back to local buckets: that run measured local mode" >&2; exit 1; }
