#!/usr/bin/env bash
# evloop-deadline.sh MAIN_BIN NEW_BIN [N] — how late the event-loop edge's
# response_header_timeout (50 ms) fires: both binaries on edge "evloop" in
# front of an upstream that accepts, reads and never answers; N requests
# to each, alternating, timed by curl. Prints each binary's 504 times in
# ms (min, median, p90, max). Waits while $QUIET exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/proxy-lib.sh"
main_bin=$1 new_bin=$2 n=${3:-40}
PORT_BASE=${PORT_BASE:-21100} QUIET=${QUIET:-/tmp/tasks12/QUIET}
token=bench-admin-token-0123456789abcdef secret=bench-key-secret-0123456789abcdef
export APIWARDEN_ADMIN_TOKEN=$token APIWARDEN_KEY_SECRET=$secret
scratch evloop-deadline
upstream=127.0.0.1:$PORT_BASE
python3 -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
host, port = sys.argv[1].split(":"); s.bind((host, int(port))); s.listen(128)
def hold(c):
    while c.recv(65536): pass
while True:
    c, _ = s.accept(); threading.Thread(target=hold, args=(c,), daemon=True).start()
' "$upstream" &
pids+=($!)
start() { # NAME BIN PORT
  proxy_toml "$1" "127.0.0.1:$3" "127.0.0.1:$(($3 + 1))" "$upstream" evloop
  sed -i 's/^upstream = .*/&\nresponse_header_timeout = "50ms"/' "$work/$1.toml"
  "$2" serve -config "$work/$1.toml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
}
start main "$main_bin" $((PORT_BASE + 10))
start new "$new_bin" $((PORT_BASE + 20))
key_main=$(bench_key main 127.0.0.1:$((PORT_BASE + 11)) "$pid_main")
key_new=$(bench_key new 127.0.0.1:$((PORT_BASE + 21)) "$pid_new")
for i in $(seq 1 "$n"); do
  while [ -e "$QUIET" ]; do sleep 20; done
  for t in "main $((PORT_BASE + 10)) $key_main" "new $((PORT_BASE + 20)) $key_new"; do
    set -- $t
    curl -s -o /dev/null -w "$1 %{http_code} %{time_total}\n" -H "X-API-Key: $3" "http://127.0.0.1:$2/slow"
  done
done | awk '{ if ($2 != 504) bad[$1]++; t[$1, ++c[$1]] = $3 * 1000 }
  END { for (name in c) { m = c[name]
    for (i = 1; i <= m; i++) v[i] = t[name, i]
    for (i = 2; i <= m; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
    printf "%-4s %d requests, %d not 504: ms min %.1f median %.1f p90 %.1f max %.1f\n", name, m, bad[name], v[1], v[int((m + 1) / 2)], v[int(m * 0.9)], v[m] } }'
