# Shared by the proxy benchmarks in this folder (source it; it runs nothing).
# They set work (a scratch folder), token (the admin token) and secret, and
# export them as APIWARDEN_ADMIN_TOKEN and APIWARDEN_KEY_SECRET.

# proxy_toml NAME LISTEN ADMIN UPSTREAM [EDGE] writes $work/NAME.toml: a proxy
# of every path to http://UPSTREAM on the edge EDGE (default net/http), with
# a tier "bench" of limits no benchmark reaches. Callers append sections.
proxy_toml() {
  cat >"$work/$1.toml" <<TOML
[server]
listen = "$2"
admin_listen = "$3"
edge = "${5:-net/http}"
data_dir = "$work/$1-data"
log_level = "warn"
debug_pprof = true

[security]
admin_token = "env:APIWARDEN_ADMIN_TOKEN"
key_secret = "env:APIWARDEN_KEY_SECRET"

[proxy]
upstream = "http://$4"

[routes_default]
preset = "protected"

[tiers.bench]
requests_per_hour = 1000000000
burst_per_minute = 1000000000
TOML
}

# bench_key NAME ADMIN PID waits for the instance NAME (process PID, admin
# listener ADMIN) to be ready and prints the secret of a new key of the
# tier "bench"; on failure it prints the instance's log to stderr and
# returns 1.
bench_key() {
  local k
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://$2/readyz" && break
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  k=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"bench","owner_id":"org_bench","tier":"bench"}' "http://$2/admin/v1/keys" |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("secret", ""))' 2>/dev/null || true)
  [ -n "$k" ] || { echo "no key on $1" >&2; cat "$work/$1.log" >&2; return 1; }
  echo "$k"
}

# redis_fell_back NAME ADMIN prints NAME's Redis failure and fallback
# counters (from /metrics on its admin listener ADMIN) and returns 1 when
# any is not 0, or when it cannot read them: such a run measured local
# buckets, not Redis mode.
redis_fell_back() {
  local m rc=0
  m=$(curl -sf -H "Authorization: Bearer $token" "http://$2/metrics" |
    awk '/^apiwarden_redis_(fallbacks|failures)_total /{printf "%s=%s ", $1, $2; if ($2 != 0) bad=1} END{exit bad}') || rc=1
  echo "$1: ${m:-no metrics}"
  return $rc
}

# ticks PID prints the CPU ticks (user and system) PID has used; 0 when
# PID is empty or gone.
ticks() { [ -n "$1" ] && awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# wrk_figures OUT prints "req/s p99 non-2xx requests socket-errors" from
# wrk's --latency output OUT.
wrk_figures() {
  awk -v out="$1" 'BEGIN{
    n=split(out, L, "\n"); rps=0; p99="?"; bad=0; total=0; errs=0
    for(i=1;i<=n;i++){ split(L[i], f, " ")
      if(L[i] ~ /^Requests\/sec:/) rps=f[2]
      if(L[i] ~ /requests in/) total=f[1]
      if(L[i] ~ /^ +99%/) p99=f[2]
      if(L[i] ~ /Non-2xx/) bad=f[5]
      if(L[i] ~ /Socket errors:/) { gsub(/,/, "", L[i]); split(L[i], e, " "); errs=e[4]+e[6]+e[8]+e[10] } }
    print rps, p99, bad, total, errs }'
}

# p99_ms LATENCY prints wrk's latency (850.00us, 6.57ms, 1.02s) in ms.
p99_ms() {
  awk -v l="$1" 'BEGIN{ v=l+0
    if (l ~ /us$/) v/=1000; else if (l ~ /ms$/) v=v; else if (l ~ /m$/) v*=60000; else if (l ~ /s$/) v*=1000
    printf "%.2f", v }'
}

# need_upstream exits unless $upstream answers.
need_upstream() {
  curl -s -o /dev/null "http://$upstream/" || { echo "no upstream on $upstream (run peers.sh --serve-only, or set UPSTREAM)" >&2; exit 1; }
}

# scratch NAME sets work to a new folder and pids to an empty list, and
# makes the script, when it exits, kill and reap every PID in pids and
# remove the folder.
scratch() {
  work=$(mktemp -d -t "$1.XXXXXX")
  pids=()
  trap scratch_cleanup EXIT
  trap 'exit 130' INT TERM
}
scratch_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
