#!/usr/bin/env bash
# The proxy's req/s while its instance ships request records to PostgreSQL
# (docs/BENCHMARKS.md, "Cluster mode: shipping request records").
#
# Starts a throwaway PostgreSQL 15 (initdb in a temporary directory, a free
# loopback port, fsync off, as internal/pgtest does), and two apiwarden
# proxies in front of the peer benchmark's upstream (127.0.0.1:19001, which
# `peers.sh --serve-only` serves): "local" without [cluster], "cluster" with
# it (shipping every flush interval, 1 s). Then, interleaved, ROUNDS times:
#   local     wrk against the local instance
#   cluster   wrk against the cluster instance (shipping as it goes)
#   pg-down   PostgreSQL stopped: wrk against the cluster instance, whose
#             records pile up in its data file
#   drain     PostgreSQL started again: wrk while the backlog drains
# Each line: req/s, p99, non-2xx, and CPU µs per request of apiwarden and of
# PostgreSQL (every backend and the postmaster, from /proc/PID/stat), and the
# cluster instance's backlog after the run.
#
# With PROFILE_DIR set, a CPU profile of each instance is taken during its
# runs of the first round (local.pprof, cluster.pprof, drain.pprof).
#
# Usage: docs/bench/shipping-proxy.sh BINARY [ROUNDS] [SECONDS]
# Needs wrk, curl, the PostgreSQL 15 binaries (APIWARDEN_POSTGRES_BIN) and
# the upstream already serving on 127.0.0.1:19001. Binds only 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/proxy-lib.sh"
bin=$(realpath "${1:?usage: $0 BINARY [ROUNDS] [SECONDS]}")
rounds=${2:-3} dur=${3:-10}
pgbin=${APIWARDEN_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
curl -s -o /dev/null http://127.0.0.1:19001/ || { echo "no upstream on 127.0.0.1:19001 (run peers.sh --serve-only)" >&2; exit 1; }

work=$(mktemp -d -t shipload.XXXXXX)
chmod 755 "$work"
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" stop -m immediate -w >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/pg" && [ "$(id -u)" != 0 ] || chown postgres "$work/pg"
as_pg "$pgbin/initdb" --auth=trust --username=postgres --encoding=UTF8 --no-sync -D "$work/pg/data" >/dev/null
pgport=$(free_port)
pgopts="-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/pg -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
pg_start() { as_pg "$pgbin/pg_ctl" -D "$work/pg/data" start -w -t 60 -l "$work/pg/log" -o "$pgopts" >/dev/null; }
pg_stop() { as_pg "$pgbin/pg_ctl" -D "$work/pg/data" stop -m fast -w >/dev/null; }
pg_start
"$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U postgres -qc 'CREATE DATABASE apiwarden' postgres

token=bench-admin-token-0123456789abcdef secret=bench-key-secret-0123456789abcdef
export APIWARDEN_ADMIN_TOKEN=$token APIWARDEN_KEY_SECRET=$secret
declare -A listen admin pid
for name in local cluster; do
  listen[$name]=127.0.0.1:$(free_port) admin[$name]=127.0.0.1:$(free_port)
  proxy_toml "$name" "${listen[$name]}" "${admin[$name]}" 127.0.0.1:19001
  if [ "$name" = cluster ]; then
    printf '\n[cluster]\npostgres_url = "postgres://postgres@127.0.0.1:%s/apiwarden?sslmode=disable"\ninstance_id = "bench"\n' "$pgport" >>"$work/$name.toml"
  fi
  "$bin" serve -config "$work/$name.toml" 2>"$work/$name.log" & pids+=($!); pid[$name]=$!
done
declare -A key
for name in local cluster; do key[$name]=$(bench_key "$name" "${admin[$name]}" "${pid[$name]}"); done

pg_ticks() { # the postmaster, its live children, and the children it reaped
  local pm; pm=$(head -1 "$work/pg/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
  { awk '{print $14+$15+$16+$17}' "/proc/$pm/stat"; for c in $(pgrep -P "$pm"); do ticks "$c" 2>/dev/null || true; done; } | awk '{s+=$1} END{print s+0}'
}
backlog() {
  curl -sf -H "Authorization: Bearer $token" "http://${admin[cluster]}/metrics" |
    awk '/^apiwarden_cluster_ship_waiting_records /{print $2}'
}
hz=$(getconf CLK_TCK)
profile() { # label instance: a CPU profile of most of one run, in the background
  [ -n "${PROFILE_DIR:-}" ] && [ "$r" = 1 ] || return 0
  curl -s -H "Authorization: Bearer $token" -o "$PROFILE_DIR/$1.pprof" \
    "http://${admin[$2]}/debug/pprof/profile?seconds=$((dur - 2))" &
}
r=0
run() { # label instance -> one line of figures
  local a0 p0 out a1 p1
  profile "$1" "$2"
  a0=$(ticks "${pid[$2]}") p0=$(pg_ticks)
  out=$(wrk -t1 -c64 -d"${dur}"s --latency -H "X-API-Key: ${key[$2]}" -H "Authorization: Bearer ${key[$2]}" "http://${listen[$2]}/" 2>&1)
  a1=$(ticks "${pid[$2]}") p1=$(pg_ticks)
  awk -v fig="$(wrk_figures "$out")" -v label="$1" -v da=$((a1 - a0)) -v dp=$((p1 - p0)) -v hz="$hz" -v bl="$(backlog || true)" -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN{
    split(fig, f, " "); rps=f[1]; p99=f[2]; bad=f[3]; total=f[4]
    us=1e6/hz
    printf "%-8s %9.0f req/s  p99 %8s  non2xx %s  apiwarden %5.1f µs/req  postgres %5.1f µs/req  backlog %s  load %s\n",
      label, rps, p99, bad, da*us/(total?total:1), dp*us/(total?total:1), (bl==""?"-":bl), load }'
}

run warm-local local >/dev/null; run warm-cluster cluster >/dev/null
for r in $(seq 1 "$rounds"); do
  echo "round $r"
  run local local
  run cluster cluster
  pg_stop
  run pg-down cluster
  pg_start
  run drain cluster
done
grep -c . "$work/cluster.log" >/dev/null && tail -5 "$work/cluster.log" >&2 || true
