#!/usr/bin/env bash
# Time from a push through replica A to the watch event on replica B (PostgreSQL + SeaweedFS, two
# replicas of the testbed, server/examples/testbed.rs, each addressed directly): COUNT pushes of
# a manifest to new tags, one after another, while a watch of the namespace's image streams is
# open on B (bench/watch_latency.py). Prints the median, p90 and worst, from the PUT sent and
# from its answer. Target: median under 1 s.
#
# Usage: bench/watch.sh [COUNT]   (default 200; needs python3, PostgreSQL, SeaweedFS and HAProxy:
# scripts/setup test installs them). Results are also written to bench/results/.
# BERTH_BIN runs another build instead of target/release/berth.
set -euo pipefail
cd "$(dirname "$0")/.."

count="${1:-200}"
. bench/common.sh

start_testbed watch --replicas 2 -- --log-level warn
echo "$count pushes through ${replica_urls[0]}, watched on ${replica_urls[1]}" >&2
python3 bench/watch_latency.py "${replica_urls[0]}" "${replica_urls[1]}" admin bench-password \
  --count "$count" >"$work/latencies"

mkdir -p bench/results
report="bench/results/watch-$(date -u +%Y%m%dT%H%M%SZ).txt"
# Quantile q of column c (seconds), in milliseconds.
quantile() { awk -v c="$1" '{ print $c }' "$work/latencies" | sort -g | awk -v q="$2" \
  '{ a[NR] = $1 } END { i = int(q * NR + 0.999999); if (i < 1) i = 1; printf "%.1f", a[i] * 1000 }'; }
{
  printf 'Push through replica A to the watch event on replica B, PostgreSQL + SeaweedFS, Berth %s, %s pushes, %s, %s cores\n' \
    "$berth_bin" "$(wc -l <"$work/latencies")" "$(date -u +%F)" "$(nproc)"
  printf '%-30s %9s %9s %9s\n' "milliseconds" "median" "p90" "worst"
  printf '%-30s %9s %9s %9s\n' "from the PUT sent" "$(quantile 2 0.5)" "$(quantile 2 0.9)" "$(quantile 2 1)"
  printf '%-30s %9s %9s %9s\n' "from the PUT's answer" "$(quantile 3 0.5)" "$(quantile 3 0.9)" "$(quantile 3 1)"
} | tee "$report"
