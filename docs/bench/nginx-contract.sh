#!/usr/bin/env bash
# The proxy against an nginx that does the same header work (issue 16;
# docs/BENCHMARKS.md, "nginx with apiwarden's header work").
#
# peers.sh's nginx checks the key against a map and limit_req, and forwards
# the request as it came: the key headers go to the app and nothing is
# added. apiwarden's contract (SPEC.md §5) makes it remove the key header,
# add the identity, X-Forwarded-* and X-Request-Id headers upstream, and the
# rate-limit headers and the request id to the answer. This script runs, in
# interleaved rounds of the peer benchmark's wrk line
#   wrk -t1 -c64 -dSECONDSs --latency -H "X-API-Key: K" -H "Authorization: Bearer K"
# five targets in front of the upstream at $UPSTREAM (default
# 127.0.0.1:19001, which `peers.sh --serve-only` serves):
#   direct     the upstream itself
#   nginx      peers.sh's nginx, configured as peers.sh configures it
#   nginx+hdr  the same nginx doing apiwarden's header work: the key's
#              headers removed (X-API-Key, and Authorization, which carries
#              the same key here), X-Apiwarden-Key-Id and -Tier from maps of
#              the keys, X-Apiwarden-Owner (apiwarden's key has an owner),
#              X-Forwarded-For/-Host/-Proto and X-Request-Id upstream (and
#              the client's Host, as apiwarden forwards it), and
#              X-Request-Id, RateLimit-Policy, RateLimit, X-RateLimit-Limit,
#              -Remaining and -Reset on the answer (fixed texts of the sizes
#              apiwarden sends: nginx cannot count)
#   floor      docs/bench/bareproxy -contract: the same headers on
#              fasthttp, no decision, no record
#   apiwarden  BINARY's proxy on the edge EDGE (default "auto": the event
#              loops), a tier of huge limits
#   evfloor    docs/bench/evfloor: the same headers as floor on epoll event
#              loops, no goroutine per connection (not run by default)
# Each line: req/s, p99, CPU µs per request of the target's processes and
# of the upstream (when found by its port), and the load average. At the
# end: the medians and the ratios that matter.
#
# Environment: UPSTREAM=host:port; PORT_BASE=n (default 20410: n .. n+5);
# EDGE, apiwarden's [server] edge (default auto; the thirteenth session's
# series and those before it ran fasthttp);
# TARGETS, the targets in the order of a round (default "direct nginx
# nginx+hdr floor apiwarden"; BINARY may be - without apiwarden);
# PERF_EVENTS, perf stat's -e list: each round also counts those events in
# the target's processes over wrk's run, per request (perf's tracepoints
# cost CPU: take CPU figures from runs without it);
# UPSTREAM_BIN, a build of ../shared/bench/upstream this script then starts
# at UPSTREAM itself, in its own session, so that the upstream shares the
# scheduler's autogroup with wrk and the targets (docs/BENCHMARKS.md, "The
# same binary, two p99s").
# Usage: docs/bench/nginx-contract.sh BINARY [ROUNDS] [SECONDS]
# Needs nginx, wrk, curl, python3, go and ss. Binds only 127.0.0.1;
# removes everything it started and wrote when it exits.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/proxy-lib.sh"
usage="usage: $0 BINARY [ROUNDS] [SECONDS]"
bin=${1:?$usage}
rounds=${2:-3} dur=${3:-10}
upstream=${UPSTREAM:-127.0.0.1:19001}
port=${PORT_BASE:-20410}
read -r -a targets <<<"${TARGETS:-direct nginx nginx+hdr floor apiwarden}"
wants() { [[ " ${targets[*]} " == *" $1 "* ]]; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
for tool in wrk curl python3 go ss; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
[ -x "$nginx_bin" ] || { echo "needs nginx" >&2; exit 1; }
scratch nginxcontract
if [ -n "${UPSTREAM_BIN:-}" ]; then
  "$UPSTREAM_BIN" -addr "$upstream" 2>"$work/upstream.log" & pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://$upstream/" && break; sleep 0.1; done
fi
need_upstream
token=bench-admin-token-0123456789abcdef secret=bench-key-secret-0123456789abcdef
export APIWARDEN_ADMIN_TOKEN=$token APIWARDEN_KEY_SECRET=$secret

# The keys of peers.sh, each with a key id of apiwarden's shape for nginx+hdr.
for i in $(seq 1 1000); do printf 'k%031d\n' "$i"; done >"$work/keys.txt"
nkey=$(sed -n 500p "$work/keys.txt")
sed 's/.*/"&" 1;/' "$work/keys.txt" >"$work/valid.map"
sed 's/.*/"&" unlimited;/' "$work/keys.txt" >"$work/tier.map"
awk '{printf "\"%s\" key_%020d;\n", $1, NR}' "$work/keys.txt" >"$work/keyid.map"

# nginx_conf NAME PORT EXTRA writes and starts an nginx like peers.sh's,
# with EXTRA in its location.
nginx_conf() {
  mkdir -p "$work/$1/logs" "$work/$1/tmp"
  cat >"$work/$1/nginx.conf" <<NGINX
worker_processes 2;
pid $work/$1/nginx.pid;
error_log $work/$1/logs/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $work/$1/tmp/body; proxy_temp_path $work/$1/tmp/proxy;
  fastcgi_temp_path $work/$1/tmp/fcgi; uwsgi_temp_path $work/$1/tmp/uwsgi; scgi_temp_path $work/$1/tmp/scgi;
  map_hash_max_size 16384; map_hash_bucket_size 128;
  upstream app { server $upstream; keepalive 64; }
  map \$http_x_api_key \$valid { default 0; include $work/valid.map; }
  map \$http_x_api_key \$tier { default ""; include $work/tier.map; }
  map \$http_x_api_key \$keyid { default ""; include $work/keyid.map; }
  limit_req_zone \$http_x_api_key zone=perkey:10m rate=1000000r/s;
  server { listen 127.0.0.1:$2 reuseport;
    location / { if (\$valid = 0) { return 401; }
      limit_req zone=perkey burst=100000 nodelay; limit_req_status 429;
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      $3 } }
}
NGINX
  "$nginx_bin" -c "$work/$1/nginx.conf" -p "$work/$1/" & pids+=($!)
  pid[$1]=$!
  url[$1]=http://127.0.0.1:$2/
  key[$1]=$nkey
}

declare -A pid url key
nginx_conf nginx "$port" ""
nginx_conf nginx+hdr "$((port + 1))" '
      proxy_set_header X-API-Key "";
      proxy_set_header Authorization "";
      proxy_set_header X-Apiwarden-Owner org_bench;
      proxy_set_header X-Apiwarden-Tier $tier;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header X-Apiwarden-Key-Id $keyid;
      add_header X-Request-Id $request_id;
      add_header X-Ratelimit-Reset 1796659200;
      add_header Ratelimit-Policy "\"hour\";q=1000000000000;w=3600, \"minute\";q=60000000000;w=60";
      add_header Ratelimit "\"minute\";r=59999999999;t=1";
      add_header X-Ratelimit-Limit 60000000000;
      add_header X-Ratelimit-Remaining 59999999999;'

(cd "$here/bareproxy" && go build -o "$work/floor" .)
"$work/floor" -listen "127.0.0.1:$((port + 2))" -upstream "$upstream" -contract 2>"$work/floor.log" & pids+=($!)
pid[floor]=$! url[floor]=http://127.0.0.1:$((port + 2))/ key[floor]=$nkey

if wants evfloor; then
  (cd "$here/evfloor" && go build -o "$work/evfloor" .)
  "$work/evfloor" -listen "127.0.0.1:$((port + 5))" -upstream "$upstream" 2>"$work/evfloor.log" & pids+=($!)
  pid[evfloor]=$! url[evfloor]=http://127.0.0.1:$((port + 5))/ key[evfloor]=$nkey
fi

if wants apiwarden; then
  bin=$(realpath "$bin")
  proxy_toml apiwarden "127.0.0.1:$((port + 3))" "127.0.0.1:$((port + 4))" "$upstream" "${EDGE:-auto}"
  sed -i 's/^debug_pprof = true$/debug_pprof = false/' "$work/apiwarden.toml"
  "$bin" serve -config "$work/apiwarden.toml" >"$work/apiwarden.log" 2>&1 & pids+=($!)
  pid[apiwarden]=$! url[apiwarden]=http://127.0.0.1:$((port + 3))/
  key[apiwarden]=$(bench_key apiwarden "127.0.0.1:$((port + 4))" "${pid[apiwarden]}")
fi
url[direct]=http://$upstream/ key[direct]=$nkey
upid=$(ss -Hltnp "sport = :${upstream##*:}" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)

# procs NAME prints the PIDs whose CPU counts for target NAME: nginx's
# master and workers, or the one process.
procs() {
  case $1 in
    direct) ;;
    nginx*) echo "${pid[$1]}"; pgrep -P "${pid[$1]}" || true ;;
    *) echo "${pid[$1]}" ;;
  esac
}
cpu() { local t=0 p; for p in $(procs "$1"); do t=$((t + $(ticks "$p"))); done; echo $t; }

for t in "${targets[@]}"; do
  for _ in $(seq 1 100); do curl -s -o /dev/null -H "X-API-Key: ${key[$t]}" "${url[$t]}" && break; sleep 0.1; done
  wrk -t1 -c64 -d2s -H "X-API-Key: ${key[$t]}" -H "Authorization: Bearer ${key[$t]}" "${url[$t]}" >/dev/null
done
hz=$(getconf CLK_TCK)
declare -A rps p99s cpus upcpus
printf '%-5s %-10s %9s %8s %8s %9s %s\n' round target req/s p99 "us/req" "up us/req" load
for r in $(seq 1 "$rounds"); do
  for t in "${targets[@]}"; do
    perfpid=""
    if [ -n "${PERF_EVENTS:-}" ] && [ -n "$(procs "$t")" ]; then
      perf stat -x, -e "$PERF_EVENTS" -p "$(procs "$t" | paste -sd,)" -o "$work/perf.out" -- sleep "$dur" & perfpid=$!
    fi
    c0=$(cpu "$t") u0=$(ticks "$upid")
    out=$(wrk -t1 -c64 -d"$dur"s --latency -H "X-API-Key: ${key[$t]}" -H "Authorization: Bearer ${key[$t]}" "${url[$t]}" 2>&1)
    c1=$(cpu "$t") u1=$(ticks "$upid")
    read -r rs p99 bad total errs <<<"$(wrk_figures "$out")"
    [ "$bad" = 0 ] && [ "$errs" = 0 ] || echo "$t: $bad non-2xx, $errs socket errors" >&2
    rps[$t,$r]=$rs p99s[$t,$r]=$(p99_ms "$p99")
    cpus[$t,$r]=$(awk -v d=$((c1 - c0)) -v n="$total" -v hz="$hz" 'BEGIN{printf "%.1f", n ? d*1e6/hz/n : 0}')
    upcpus[$t,$r]=$(awk -v d=$((u1 - u0)) -v n="$total" -v hz="$hz" 'BEGIN{printf "%.1f", n ? d*1e6/hz/n : 0}')
    printf '%-5s %-10s %9.0f %8s %8.1f %9.1f %s\n' "$r" "$t" "$rs" "$p99" "${cpus[$t,$r]}" "${upcpus[$t,$r]}" \
      "$(cut -d' ' -f1 /proc/loadavg)"
    if [ -n "$perfpid" ]; then
      wait "$perfpid" || true
      awk -F, -v n="$total" -v t="$t" '$3 != "" && $1 ~ /^[0-9]/ {printf "      perf %-10s %-34s %8.2f a request\n", t, $3, n ? $1/n : 0}' "$work/perf.out"
    fi
  done
done
# spread ARRAY TARGET [FORMAT] prints the median and range over the rounds.
spread() {
  local -n a=$1
  for r in $(seq 1 "$rounds"); do echo "${a[$2,$r]}"; done | sort -g |
    awk -v f="${3:-%s}" '{v[NR]=$1} END{printf f" ("f"-"f")", v[int((NR+1)/2)], v[1], v[NR]}'
}
declare -A med
printf '%-17s %9s %24s %22s %18s %18s\n' "median target" req/s "req/s (range)" "p99 ms (range)" "us/req (range)" "up us/req (range)"
for t in "${targets[@]}"; do
  med[$t]=$(for r in $(seq 1 "$rounds"); do echo "${rps[$t,$r]}"; done | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  printf 'median %-10s %9.0f %24s %22s %18s %18s\n' "$t" "${med[$t]}" "$(spread rps "$t" %.0f)" "$(spread p99s "$t")" \
    "$(spread cpus "$t")" "$(spread upcpus "$t")"
done
ratio() { awk -v a="${med[$1]:-0}" -v b="${med[$2]:-0}" 'BEGIN{printf "%.2f", b ? a/b : 0}'; }
echo "ratios: nginx/direct $(ratio nginx direct)  nginx+hdr/nginx $(ratio nginx+hdr nginx)  floor/nginx+hdr $(ratio floor nginx+hdr)"
wants apiwarden && echo "        apiwarden/nginx $(ratio apiwarden nginx)  apiwarden/nginx+hdr $(ratio apiwarden nginx+hdr)  apiwarden/floor $(ratio apiwarden floor)"
wants evfloor && echo "        evfloor/nginx $(ratio evfloor nginx)  evfloor/nginx+hdr $(ratio evfloor nginx+hdr)  evfloor/floor $(ratio evfloor floor)"
true
