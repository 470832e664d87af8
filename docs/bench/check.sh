#!/usr/bin/env bash
# /v1/check on the fasthttp edge against the bare upstream, two binaries
# interleaved (issue 16; docs/BENCHMARKS.md, "/v1/check: the body and the
# answer by hand").
#
# Starts BASE and NEW, each with edge = "fasthttp", a tier of huge limits
# and a data directory of its own, creates a key on each, and runs ROUNDS
# rounds of
#   wrk -t2 -c64 -dSECONDSs --latency -s <POST of {"key","method","path"}>
# against the upstream at $UPSTREAM (the same POST; default 127.0.0.1:19001,
# which `peers.sh --serve-only` serves), then BASE and NEW, their order
# swapped every other round. Each line: req/s, p99, CPU µs per request of
# the serving process (utime+stime from /proc/PID/stat over wrk's request
# count; the upstream's when its process is found by its port), non-2xx
# answers and the load average. A 2 s warm-up per target comes first.
#
# Environment: UPSTREAM=host:port; PORT_BASE=n (default 20210: BASE on n
# and n+1, NEW on n+10 and n+11).
# Usage: docs/bench/check.sh BASE NEW [ROUNDS] [SECONDS]
# Needs wrk, curl, jq, openssl and ss. Binds only 127.0.0.1; removes what
# it started and wrote when it exits.
set -euo pipefail
usage="usage: $0 BASE NEW [ROUNDS] [SECONDS]"
base=$(realpath "${1:?$usage}")
new=$(realpath "${2:?$usage}")
rounds=${3:-3}
secs=${4:-10}
upstream=${UPSTREAM:-127.0.0.1:19001}
port=${PORT_BASE:-20210}
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
APIWARDEN_ADMIN_TOKEN=$(openssl rand -hex 24)
export APIWARDEN_ADMIN_TOKEN

declare -A pid url
start() { # name binary port
  cat > "$dir/$1.toml" <<EOF
[server]
listen = "127.0.0.1:$3"
admin_listen = "127.0.0.1:$(($3 + 1))"
data_dir = "$dir/data-$1"
log_level = "warn"
edge = "fasthttp"

[tiers.unlimited]
requests_per_hour = 1000000000000
burst_per_minute = 1000000000000
EOF
  "$2" serve -config "$dir/$1.toml" > "$dir/$1.log" 2>&1 &
  pids+=($!)
  pid[$1]=$!
  url[$1]=http://127.0.0.1:$3/v1/check
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$(($3 + 1))/healthz" && break; sleep 0.2; done
  local key
  key=$(APIWARDEN_URL=http://127.0.0.1:$(($3 + 1)) "$2" keys create -tier unlimited -json | jq -r .secret)
  printf 'wrk.method = "POST"\nwrk.body = %s{"key":"%s","method":"GET","path":"/api/forms/1"}%s\nwrk.headers["Content-Type"] = "application/json"\n' \
    "'" "$key" "'" > "$dir/$1.lua"
}
start base "$base" "$port"
start new "$new" $((port + 10))
cp "$dir/base.lua" "$dir/up.lua"
url[up]=http://$upstream/v1/check
pid[up]=$(ss -ltnpH "sport = :${upstream##*:}" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)

ticks() { if [ -n "$1" ]; then awk '{print $14 + $15}' "/proc/$1/stat"; else echo 0; fi; }
run() { # name
  local t0 t1 out n
  t0=$(ticks "${pid[$1]}")
  out=$(wrk -t2 -c64 -d"${secs}"s --latency -s "$dir/$1.lua" "${url[$1]}" 2>&1)
  t1=$(ticks "${pid[$1]}")
  n=$(awk '/requests in/{print $1}' <<< "$out")
  printf '%-4s req/s %s p99 %s cpu_us %s non2xx %s load %s\n' "$1" \
    "$(awk '/Requests\/sec/{print $2}' <<< "$out")" "$(awk '$1 == "99%"{print $2}' <<< "$out")" \
    "$(awk -v a="$t0" -v b="$t1" -v n="$n" -v p="${pid[$1]}" 'BEGIN{if (p == "") print "-"; else printf "%.1f", (b - a) * 1e6 / 100 / n}')" \
    "$(awk '/Non-2xx/{print $NF}' <<< "$out" | grep . || echo 0)" "$(cut -d' ' -f1 /proc/loadavg)"
}
for t in up base new; do wrk -t2 -c64 -d2s -s "$dir/$t.lua" "${url[$t]}" > /dev/null; done # warm-up
echo "start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  echo "round $r"
  run up
  if [ $((r % 2)) = 1 ]; then run base; run new; else run new; run base; fi
done
echo "end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
