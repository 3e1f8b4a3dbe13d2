#!/usr/bin/env bash
# Berth's resident memory after bursts of registry traffic, on the release build:
#   - idle RSS after start (and one request),
#   - RSS after each of RUNS bursts (bench/burst.py: about 1,000 requests like a conformance run,
#     4 clients at once: monolithic and chunked uploads, manifests PUT/GET/HEAD/DELETE, tag lists,
#     referrers, the catalog, errors, made-up methods), settled for SETTLE seconds,
#   - once with nothing scraping /metrics (the default), once scraping it after each burst,
# and the number of series /metrics holds at the end. Target: RSS after any burst within 50 MiB
# of idle, with or without scraping.
# Then, without an account: 4,000 failed sign-ins with a new 8 KB user name each, and 300 with a
# new 100 KB name each: RSS and the database's growth after each.
#
# Usage: bench/memory.sh [RUNS] [SETTLE_SECONDS]   (default 8 runs, 11 s: the allocator gives free pages back every 10 s; needs curl, python3)
# Extra environment for Berth (MALLOC_ARENA_MAX=2, ...) passes through; BERTH_BIN runs another
# build (an older one, to compare) instead of target/release/berth. Results are also written to
# bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-8}"
settle="${2:-11}"
port=5111

. bench/common.sh

rss_mib() {
  awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

start_berth() {
  rm -rf "$work/data"
  BERTH_BOOTSTRAP_PASSWORD=bench-password "$berth_bin" serve --listen "127.0.0.1:$port" \
    --data-dir "$work/data" --log-level warn >"$work/berth.out" 2>"$work/berth.err" &
  berth_pid=$!
  pids+=("$berth_pid")
  for _ in $(seq 100); do
    curl -fs -u admin:bench-password "http://127.0.0.1:$port/v2/" >/dev/null && return
    sleep 0.1
  done
  echo "berth did not start:" >&2
  cat "$work/berth.err" >&2
  exit 1
}

stop_berth() {
  kill "$berth_pid"
  wait "$berth_pid" 2>/dev/null || true
  berth_pid=""
}

# The SQLite database with its write-ahead log.
db_kib() {
  du -ck "$work/data"/berth.db* | awk 'END { print $1 }'
}

series() {
  curl -fs "http://127.0.0.1:$port/metrics" | grep -c '^berth_' || true
}

mkdir -p bench/results
result="bench/results/memory-$(date +%Y%m%d-%H%M%S).txt"
{
  echo "Berth $berth_bin ($(git rev-parse --short HEAD)) memory after bursts; runs=$runs settle=${settle}s"
  [ -n "${MALLOC_ARENA_MAX:-}" ] && echo "MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX"
  for mode in unscraped scraped; do
    start_berth
    sleep "$settle"
    idle=$(rss_mib "$berth_pid")
    line="$mode: idle ${idle} MiB; after each run:"
    for run in $(seq "$runs"); do
      summary=$(python3 bench/burst.py "http://127.0.0.1:$port" admin bench-password --run "$mode$run")
      [ "$mode" = scraped ] && curl -fs "http://127.0.0.1:$port/metrics" >/dev/null
      sleep "$settle"
      line="$line $(rss_mib "$berth_pid")"
    done
    echo "$line MiB (last run: $summary)"
    echo "$mode: berth_ series on /metrics at the end: $(series)"
    stop_berth
  done
  start_berth
  sleep "$settle"
  line="failed sign-ins with new names: idle $(rss_mib "$berth_pid") MiB, database $(db_kib) KiB;"
  for shape in "4000 8192" "300 102400"; do
    set -- $shape
    summary=$(python3 bench/burst.py "http://127.0.0.1:$port" - - --failed-logins "$1" --name-bytes "$2" --run "n$2")
    sleep "$settle"
    line="$line after $1 of $(($2 / 1024)) KB: $(rss_mib "$berth_pid") MiB, database $(db_kib) KiB ($summary);"
  done
  echo "$line"
  stop_berth
} | tee "$result"
