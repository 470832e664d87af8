#!/usr/bin/env bash
# evloop-ab.sh MAIN_BIN NEW_BIN [ROUNDS] — interleaved A/B of the proxy
# with key check, limits and recording: MAIN_BIN on edge "fasthttp"
# against NEW_BIN on edge "evloop", same configuration otherwise, in
# front of one upstream (UPSTREAM_BIN, a build of ../shared/bench/upstream,
# started here on $PORT_BASE). Each round runs wrk against both, in
# alternating order, and prints per target: req/s, p99, the target's CPU a
# request (utime+stime from /proc/PID/stat over wrk's requests) and the
# upstream's. Waits while $QUIET (default /tmp/tasks12/QUIET) exists (the
# lead measures). MAIN_EDGE=evloop runs MAIN_BIN on "evloop" too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/proxy-lib.sh"
main_bin=$1 new_bin=$2 rounds=${3:-8}
PORT_BASE=${PORT_BASE:-21100} DURATION=${DURATION:-8s}
MAIN_EDGE=${MAIN_EDGE:-fasthttp} QUIET=${QUIET:-/tmp/tasks12/QUIET}
UPSTREAM_BIN=${UPSTREAM_BIN:-/tmp/upstream}
token=bench-admin-token-0123456789abcdef secret=bench-key-secret-0123456789abcdef
export APIWARDEN_ADMIN_TOKEN=$token APIWARDEN_KEY_SECRET=$secret
scratch evloop-ab
upstream=127.0.0.1:$PORT_BASE
"$UPSTREAM_BIN" -addr "$upstream" >"$work/upstream.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")
start() { # NAME BIN EDGE PORT
  proxy_toml "$1" "127.0.0.1:$4" "127.0.0.1:$(($4 + 1))" "$upstream" "$3"
  "$2" serve -config "$work/$1.toml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
}
start main "$main_bin" "$MAIN_EDGE" $((PORT_BASE + 10))
start evloop "$new_bin" evloop $((PORT_BASE + 20))
key_main=$(bench_key main 127.0.0.1:$((PORT_BASE + 11)) "$pid_main")
key_evloop=$(bench_key evloop 127.0.0.1:$((PORT_BASE + 21)) "$pid_evloop")
hz=$(getconf CLK_TCK)
run() { # NAME PORT KEY ROUND
  local pid=pid_$1 before up_before out f
  before=$(ticks "${!pid}") up_before=$(ticks "$up_pid")
  out=$(wrk -t1 -c64 -d"$DURATION" --latency -H "X-API-Key: $3" -H "Authorization: Bearer $3" "http://127.0.0.1:$2/bench" 2>&1)
  f=($(wrk_figures "$out"))
  awk -v r="$4" -v n="$1" -v rps="${f[0]}" -v p99="$(p99_ms "${f[1]}")" -v bad="${f[2]}" -v total="${f[3]}" \
    -v t="$(($(ticks "${!pid}") - before))" -v u="$(($(ticks "$up_pid") - up_before))" -v hz="$hz" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN{ printf "round %d %-7s req/s %8.0f p99 %6s ms non2xx %s us/req %6.2f up_us/req %6.2f load %s\n", r, n, rps, p99, bad, t/hz*1e6/total, u/hz*1e6/total, load }'
}
for r in $(seq 1 "$rounds"); do
  while [ -e "$QUIET" ]; do sleep 20; done
  if ((r % 2)); then order="main evloop"; else order="evloop main"; fi
  for n in $order; do
    if [ "$n" = main ]; then run main $((PORT_BASE + 10)) "$key_main" "$r"; else run evloop $((PORT_BASE + 20)) "$key_evloop" "$r"; fi
  done
done
