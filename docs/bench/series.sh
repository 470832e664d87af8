#!/usr/bin/env bash
# One series of issue 16's measurements, with every measured process in
# this script's session: the scheduler groups processes by session for
# CPU fairness (/proc/sys/kernel/sched_autogroup_enabled), and a target
# started elsewhere (setsid, another terminal) against wrk, the upstream
# and nginx in peers.sh's group loses about a fifth of its req/s
# (docs/BENCHMARKS.md, "The same binary, two p99s" and "The peer
# benchmark, eleventh session").
#
# Runs ../shared/bench/peers.sh four times: A the proxy (BINARY, default
# edge), B /v1/authorize (BINARY in forward-auth mode), F the contract's
# floor (docs/bench/bareproxy -contract) and E the event-loop floor
# (docs/bench/evfloor); then, against `peers.sh --serve-only`'s upstream,
# check.sh BINARY BINARY, redis-proxy.sh BINARY "auto fasthttp" and
# nginx-contract.sh BINARY, each with ROUNDS rounds of SECONDS.
#
# Environment: PEERS=path of peers.sh (default ../shared/bench/peers.sh
# from the repository root); EDGE2=an edge (server.edge) to run BINARY's
# proxy on as well, peers.sh's run V right after A (127.0.0.1:18480-18481);
# PROXY_ONLY=1 to stop after the proxy's runs (A, and V).
# Usage: docs/bench/series.sh BINARY [ROUNDS] [SECONDS]   (from the
# repository root)
# Needs what peers.sh and the three scripts need, and go. Binds
# 127.0.0.1:18380-18381, 18280-18281, 19011-19012 and peers.sh's ports;
# removes everything it started and wrote when it exits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/proxy-lib.sh"
usage="usage: $0 BINARY [ROUNDS] [SECONDS]"
bin=$(realpath "${1:?$usage}")
rounds=${2:-3} dur=${3:-10}
peers=${PEERS:-$here/../../../shared/bench/peers.sh}
[ -x "$peers" ] || { echo "no peers.sh at $peers (set PEERS)" >&2; exit 1; }
upstream=127.0.0.1:19001
scratch series
token=bench-admin-token-0123456789abcdef secret=bench-key-secret-0123456789abcdef
export APIWARDEN_ADMIN_TOKEN=$token APIWARDEN_KEY_SECRET=$secret

go build -o "$work/floor" "$here/bareproxy"
(cd "$here/evfloor" && go build -o "$work/evfloor" .)

# The proxy, and a forward-auth instance (the same file without [proxy]).
proxy_toml proxy 127.0.0.1:18380 127.0.0.1:18381 "$upstream" auto
proxy_toml auth 127.0.0.1:18280 127.0.0.1:18281 "$upstream" auto
sed -i '/^\[proxy\]/,/^$/d' "$work/auth.toml"
"$bin" serve -config "$work/proxy.toml" >"$work/proxy.log" 2>&1 & pids+=($!)
pkey=$(bench_key proxy 127.0.0.1:18381 "${pids[-1]}")
"$bin" serve -config "$work/auth.toml" >"$work/auth.log" 2>&1 & pids+=($!)
akey=$(bench_key auth 127.0.0.1:18281 "${pids[-1]}")
runs=("A --apiwarden http://127.0.0.1:18380/ --key $pkey")
if [ -n "${EDGE2:-}" ]; then
  proxy_toml edge2 127.0.0.1:18480 127.0.0.1:18481 "$upstream" "$EDGE2"
  "$bin" serve -config "$work/edge2.toml" >"$work/edge2.log" 2>&1 & pids+=($!)
  runs+=("V --apiwarden http://127.0.0.1:18480/ --key $(bench_key edge2 127.0.0.1:18481 "${pids[-1]}")")
fi
"$work/floor" -listen 127.0.0.1:19011 -upstream "$upstream" -contract >"$work/floor.log" 2>&1 & pids+=($!)
"$work/evfloor" -listen 127.0.0.1:19012 -upstream "$upstream" >"$work/evfloor.log" 2>&1 & pids+=($!)

stamp() { echo "== $1 $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
[ -n "${PROXY_ONLY:-}" ] || runs+=(
  "B --authorize http://127.0.0.1:18280/v1/authorize --key $akey"
  "F --apiwarden http://127.0.0.1:19011/ --key x"
  "E --apiwarden http://127.0.0.1:19012/ --key x")
for run in "${runs[@]}"; do
  set -- $run
  stamp "$1"
  shift
  "$peers" "$@" --rounds "$rounds" --duration "$dur"
done
if [ -n "${PROXY_ONLY:-}" ]; then stamp end; exit 0; fi

"$peers" --serve-only >"$work/serve.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://$upstream/" && break; sleep 0.2; done
stamp "D /v1/check"
"$here/check.sh" "$bin" "$bin" "$rounds" "$dur"
stamp "R Redis mode"
"$here/redis-proxy.sh" "$bin" "$rounds" "$dur" "auto fasthttp"
stamp "N nginx-contract"
"$here/nginx-contract.sh" "$bin" "$rounds" "$dur"
stamp end
