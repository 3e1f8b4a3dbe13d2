#!/usr/bin/env bash
# The console's speed, measured in headless Chromium against a release build:
# - bytes transferred on a first load of each page (WASM, JS and CSS: brotli as Chromium
#   receives them over HTTPS, and gzip as plain HTTP gives them), and what each later page adds;
# - time to interactive (navigation start to every island hydrated), median of cold loads;
#   on loopback and again over a slower link (40 ms per request, 20 Mbit/s);
# - server-rendered namespace page with 10,000 image streams, median of 50 GETs per view;
# - how long a push takes to appear in an open page, median of 5 pushes.
# Targets: a first load of 250 KB gzip and 200 KB brotli at most, 100 KB gzip more for a later
# page, 1.5 s to interactive, 50 ms per page, 1 s for a push.
#
# Usage: bench/console.sh (builds with scripts/build when the release build is missing).
# BENCH_LOADS=N times N cold loads of every page (default 3, and 10 for the namespace page).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup test >/dev/null
if [ ! -x target/release/berth ] || [ ! -d target/site/pkg ]; then
  scripts/build >&2
fi
mkdir -p bench/results
report="$PWD/bench/results/console-$(date -u +%Y%m%dT%H%M%SZ).txt"
(cd end2end && BENCH_REPORT="$report" npx playwright test -c bench.config.ts)
cat "$report"
