#!/usr/bin/env bash
# The proxy's req/s in Redis mode against local mode (issue 16; docs/BENCHMARKS.md,
# "Redis mode on both edges").
#
# Starts its own redis-server (no persistence, a free loopback port) and,
# per binary, two apiwarden proxies in front of the upstream at $UPSTREAM
# (default 127.0.0.1:19001, which `peers.sh --serve-only` serves): "local"
# without [redis], "redis" with it (timeout 1 s, so a slow round trip on a
# loaded host does not fall back), both with the same tier of huge limits,
# on the edge EDGE ("net/http", "fasthttp", "evloop", "auto", a list of
# them in one argument, or "both": net/http and fasthttp; a pair per edge).
# Creates a key on each, warms each up for 2 s, then runs ROUNDS rounds,
# each instance once per round, interleaved (local, redis, local, redis...),
# of the peer benchmark's wrk line:
#   wrk -t1 -c64 -dSECONDSs --latency -H "X-API-Key: K" -H "Authorization: Bearer K"
# Each line: req/s, p99, non-2xx (and wrk's socket errors: timeouts,
# resets), CPU µs per request of apiwarden, of
# redis-server and of the upstream (when its process is found by its port),
# decisions per script call in Redis mode (INFO commandstats), and the load
# average. At the end, per binary and edge: the medians, the Redis/local
# ratio of req/s medians and per round, and the ratio of CPU per request
# (local's over Redis's: apiwarden, redis-server and upstream, then
# apiwarden and redis-server only). It fails when a Redis-mode instance counted a
# fallback or a failure (apiwarden_redis_fallbacks_total,
# apiwarden_redis_failures_total): such a run measured local buckets.
#
# Environment:
#   UPSTREAM=host:port   the upstream (default 127.0.0.1:19001)
#   BASE=binary          also run this binary's pair, labelled "base", in
#                        the same interleaved rounds (a before/after run)
#   PORT_BASE=n          take ports n, n+1, ... instead of free ones
#   PROFILE_DIR=dir      CPU profiles of each instance during round 1
#   REDIS_SERVER=path    redis-server to run (default: the one on PATH)
#
# Usage: docs/bench/redis-proxy.sh BINARY [ROUNDS] [SECONDS] [EDGE]
# Needs wrk, curl, python3, redis-server and redis-cli. Binds only
# 127.0.0.1; removes everything it started or wrote when it exits.
set -euo pipefail
. "$(dirname "$0")/proxy-lib.sh"
usage="usage: $0 BINARY [ROUNDS] [SECONDS] [EDGE...|both]"
bin=$(realpath "${1:?$usage}")
rounds=${2:-3} dur=${3:-8} edge=${4:-net/http}
upstream=${UPSTREAM:-127.0.0.1:19001}
[ "$edge" = both ] && edge="net/http fasthttp"
read -r -a edges <<<"$edge"
for e in "${edges[@]}"; do
  case $e in net/http | fasthttp | evloop | auto) ;; *) echo "$usage" >&2; exit 2 ;; esac
done
bins=(new)
declare -A binpath=([new]=$bin)
if [ -n "${BASE:-}" ]; then bins=(base new) binpath[base]=$(realpath "$BASE"); fi
redis_server=${REDIS_SERVER:-$(command -v redis-server)} || { echo "no redis-server on PATH" >&2; exit 1; }
for tool in wrk curl python3 redis-cli; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
need_upstream
scratch redisproxy
next_port=${PORT_BASE:-0}
port() { # sets p to a loopback port nobody listens on
  if [ "$next_port" = 0 ]; then
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    return
  fi
  while ss -Hltn "sport = :$next_port" | grep -q .; do next_port=$((next_port + 1)); done
  p=$next_port next_port=$((next_port + 1))
}

port; rport=$p
"$redis_server" --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --loglevel warning \
  >"$work/redis.log" 2>&1 & pids+=($!); redis_pid=$!
for _ in $(seq 1 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$rport" ping >/dev/null || { echo "redis-server did not start" >&2; cat "$work/redis.log" >&2; exit 1; }

token=bench-admin-token-0123456789abcdef secret=bench-key-secret-0123456789abcdef
export APIWARDEN_ADMIN_TOKEN=$token APIWARDEN_KEY_SECRET=$secret
declare -A listen admin pid key
insts=()
for b in "${bins[@]}"; do for e in "${edges[@]}"; do for mode in local redis; do
  name=$b-${e//\//}-$mode; insts+=("$name")
  port; listen[$name]=127.0.0.1:$p
  port; admin[$name]=127.0.0.1:$p
  proxy_toml "$name" "${listen[$name]}" "${admin[$name]}" "$upstream" "$e"
  if [ "$mode" = redis ]; then
    printf '\n[redis]\nurl = "redis://127.0.0.1:%s/0"\ntimeout = "1s"\n' "$rport" >>"$work/$name.toml"
  fi
  "${binpath[$b]}" serve -config "$work/$name.toml" 2>"$work/$name.log" & pids+=($!); pid[$name]=$!
done; done; done
for name in "${insts[@]}"; do key[$name]=$(bench_key "$name" "${admin[$name]}" "${pid[$name]}"); done
up_pid=$(ss -Hltnp "sport = :${upstream##*:}" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)

scripts() { # script calls redis-server has run
  redis-cli -p "$rport" info commandstats | awk -F'[:=,]' '/^cmdstat_(evalsha|eval|evalsha_ro|eval_ro):/{s+=$3} END{print s+0}'
}
hz=$(getconf CLK_TCK)
prof=
profile() { # name: a CPU profile of most of one run, in the background
  prof=
  [ -n "${PROFILE_DIR:-}" ] && [ "$r" = 1 ] || return 0
  curl -s -H "Authorization: Bearer $token" -o "$PROFILE_DIR/$1.pprof" \
    "http://${admin[$1]}/debug/pprof/profile?seconds=$((dur > 3 ? dur - 2 : 1))" &
  prof=$!
}
r=0
run() { # name seconds -> one line of figures
  local a0 d0 u0 s0 out a1 d1 u1 s1
  profile "$1"
  a0=$(ticks "${pid[$1]}") d0=$(ticks "$redis_pid") u0=$(ticks "$up_pid") s0=$(scripts)
  out=$(wrk -t1 -c64 -d"$2"s --latency -H "X-API-Key: ${key[$1]}" -H "Authorization: Bearer ${key[$1]}" "http://${listen[$1]}/" 2>&1)
  a1=$(ticks "${pid[$1]}") d1=$(ticks "$redis_pid") u1=$(ticks "$up_pid") s1=$(scripts)
  [ -z "$prof" ] || wait "$prof"
  awk -v fig="$(wrk_figures "$out")" -v name="$1" -v r="$r" -v da=$((a1 - a0)) -v dd=$((d1 - d0)) -v du=$((u1 - u0)) -v ds=$((s1 - s0)) \
    -v hz="$hz" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN{
    split(fig, f, " "); rps=f[1]; p99=f[2]; bad=f[3]+f[5]; total=f[4]
    us=1e6/hz; t=(total?total:1)
    printf "%d %-24s %8.0f req/s  p99 %8s  non2xx %s  apiwarden %5.1f  redis %5.1f  upstream %5.1f µs/req  per script %5.1f  load %s\n",
      r, name, rps, p99, bad, da*us/t, dd*us/t, du*us/t, (ds ? total/ds : 0), load }'
}

for name in "${insts[@]}"; do run "$name" 2 >/dev/null; done
[ -n "${PROFILE_DIR:-}" ] && mkdir -p "$PROFILE_DIR"
echo "round name req/s p99 non-2xx, then CPU µs per request, decisions per script call (Redis mode), load average"
for r in $(seq 1 "$rounds"); do
  for name in "${insts[@]}"; do run "$name" "$dur" | tee -a "$work/lines"; done
done

python3 - "$work/lines" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[1], []).append({"round": int(f[0]), "rps": float(f[2]), "p99": f[5], "bad": int(f[7]),
        "cpu": float(f[9]) + float(f[11]) + float(f[13]), "aw": float(f[9]), "rd": float(f[11])})
med = lambda xs: statistics.median(xs)
print("\nmedians                    req/s   apiwarden  redis  sum µs/req")
for name, rs in rows.items():
    print(f"{name:24s} {med([x['rps'] for x in rs]):8.0f}  {med([x['aw'] for x in rs]):8.1f} {med([x['rd'] for x in rs]):6.1f} {med([x['cpu'] for x in rs]):8.1f}")
for name in rows:
    if not name.endswith("-local"):
        continue
    loc, red = rows[name], rows.get(name[:-len("local")] + "redis", [])
    per = [b["rps"] / a["rps"] for a, b in zip(loc, red) if a["rps"]]
    cpu = [a["cpu"] / b["cpu"] for a, b in zip(loc, red) if b["cpu"]]
    own = lambda x: x["aw"] + x["rd"]
    if per:
        print(f"{name[:-6]}: Redis/local req/s {med([x['rps'] for x in red]) / med([x['rps'] for x in loc]):.2f} on medians,"
              f" per round {', '.join(f'{x:.2f}' for x in per)};"
              f" CPU local/Redis {med([a['cpu'] for a in loc]) / med([b['cpu'] for b in red]):.2f} on medians,"
              f" per round {', '.join(f'{x:.2f}' for x in cpu)};"
              f" apiwarden+redis-server only {med([own(a) for a in loc]) / med([own(b) for b in red]):.2f}")
PY

bad=0
for name in "${insts[@]}"; do
  [[ $name == *-redis ]] || continue
  redis_fell_back "$name" "${admin[$name]}" || bad=1
done
[ "$bad" = 0 ] || { echo "a Redis-mode instance fell back to local buckets: that run measured local mode" >&2; exit 1; }
