#!/bin/sh
# The 10,000-connection soak (conns_test.go) once per variant, one after
# the other, printing each run's figures: RSS, heap and stacks with no
# connection, with every connection idle, under load and after; per idle
# and per busy connection; goroutines; req/s. docs/BENCHMARKS.md,
# "10,000 connections on the fasthttp edge", has its output.
#
#   docs/bench/conns.sh [rounds]          (from the repository root)
#
# VARIANTS lists the variants, one "edge|memory_limit|max_header_bytes" a
# line (empty fields: the defaults). APIWARDEN_CONNS (default 10000),
# APIWARDEN_CONNS_DURATION and APIWARDEN_CONNS_PROFILES pass through to
# the test. The run does not stop at a variant that fails the 256 MiB
# goal: it prints FAIL and goes on.
set -eu
rounds=${1:-1}
: "${APIWARDEN_CONNS:=10000}"
export APIWARDEN_CONNS
: "${VARIANTS:=fasthttp, reduce_idle_memory||
fasthttp, reduce_idle_memory|200MiB|
fasthttp||
net/http||}"
bin=$(mktemp -d)/apiwarden
go build -o "$bin" .
echo "binary: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes'); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
for round in $(seq "$rounds"); do
	printf '%s\n' "$VARIANTS" | while IFS='|' read -r edge limit header; do
		[ -n "$edge" ] || continue
		echo "== round $round: edge=$edge memory_limit=${limit:-0} max_header_bytes=${header:-default}; load $(cut -d' ' -f1 /proc/loadavg)"
		APIWARDEN_CONNS_BINARY=$bin APIWARDEN_CONNS_EDGE=$edge APIWARDEN_CONNS_MEMORY_LIMIT=$limit \
			APIWARDEN_CONNS_MAX_HEADER_BYTES=$header \
			go test -run '^TestConnections$' -count=1 -v -timeout 30m . 2>&1 |
			grep -E 'conns_test.go:[0-9]+: ([0-9]+ (idle|busy)|no connection|under load|connections closed|per |summary|peak RSS|goroutines grew)|^(ok|FAIL|--- )' || true
	done
done
