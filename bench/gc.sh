#!/usr/bin/env bash
# Garbage collection at scale, on the release build (server/examples/gc_load.rs makes the load,
# through the registry API):
#   1. NAMESPACES x STREAMS x IMAGES images (default 10 x 100 x 100: 100,000 images across 1,000
#      streams, a config and a 1 KiB layer each) are pushed with a one-hour grace period;
#   2. Berth restarts with a grace of GRACE seconds (default 5) and the reviews the pushes queued
#      drain (every blob was referenced: none is deleted);
#   3. pushes of new 4 MiB images for 20 s with nothing to collect: images/s and MiB/s;
#   4. every second image is deleted (half unreferenced), and once their grace has passed the same
#      pushes run while the sweep deletes them: images/s and MiB/s again (target: within 10%),
#      how long the sweep took, and Berth's peak memory during it above its level before;
#   5. the bytes the blob store lost (the data folder's files, or the bucket's objects with
#      BENCH_STORAGE=s3), next to what the metadata counted as freed
#      (berth_gc_bytes_freed_total) and what the deleted images' manifests declared.
#
# Usage: bench/gc.sh [NAMESPACES STREAMS IMAGES]   (needs curl; BENCH_STORAGE=s3 for SeaweedFS;
# BERTH_BIN runs another build). Results are also written to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

namespaces="${1:-10}"
streams="${2:-100}"
images="${3:-100}"
grace="${GRACE:-5}"
port=5113
password=bench-password

. bench/common.sh
# On a failure, what Berth said first.
trap 'status=$?; [ "$status" -ne 0 ] && tail -30 "$work/berth.err" >&2; cleanup' EXIT
RUSTFLAGS="--cfg erase_components" cargo build --release -p berth --example gc_load --no-default-features >&2
load=target/release/examples/gc_load
url="http://127.0.0.1:$port"

start_berth() {
  env "${berth_env[@]}" BERTH_BOOTSTRAP_PASSWORD=$password "$berth_bin" serve \
    --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn --gc-grace "$1" \
    >>"$work/berth.out" 2>>"$work/berth.err" &
  berth_pid=$!
  pids+=("$berth_pid")
  for _ in $(seq 200); do
    curl -fs -u "admin:$password" "$url/v2/" >/dev/null && return
    sleep 0.1
  done
  echo "berth did not start:" >&2
  cat "$work/berth.err" >&2
  exit 1
}

metric() {
  curl -fs "$url/metrics" | awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}

rss_kib() {
  awk '/^VmRSS:/ { print $2 }' "/proc/$berth_pid/status"
}

# What the blob store holds: objects and bytes.
stored() {
  if [ "$storage" = s3 ]; then
    AWS_ACCESS_KEY_ID=$s3_key AWS_SECRET_ACCESS_KEY=$s3_secret "$load" bucket-bytes \
      --endpoint "$s3_endpoint" --bucket bench --prefix berth/blobs/
  else
    find "$work/data/blobs" -type f -printf '%s\n' | awk '{ n++; s += $1 } END { printf "%d %.0f\n", n, s }'
  fi
}

wait_for() { # metric value
  while [ "$(metric "$1" | cut -d. -f1)" != "$2" ]; do sleep 0.5; done
}

start_berth 3600
echo "populating: $namespaces x $streams x $images images" >&2
populated="$($load populate --url "$url" --password $password --concurrency 16 \
  --namespaces "$namespaces" --streams "$streams" --images "$images" --out "$work/images.tsv")"
echo "$populated" >&2
kill "$berth_pid"; wait "$berth_pid" 2>/dev/null || true

start_berth "$grace"
drain_started=$(date +%s.%N)
# Drained: a sweep that started after the restart found nothing left to review.
until [ "$(metric berth_gc_last_sweep_timestamp_seconds | cut -d. -f1)" -gt "${drain_started%.*}" ] &&
  [ "$(metric berth_gc_candidates)" = 0 ]; do sleep 0.5; done
drain_seconds=$(echo "$(date +%s.%N) - $drain_started" | bc)
echo "reviews of the pushed (all referenced) blobs drained in $drain_seconds s" >&2

idle="$($load push --url "$url" --password $password --concurrency 4 --seconds 20 --seed idle)"
echo "pushes, nothing to collect: $idle" >&2
read -r objects_before bytes_before < <(stored)
freed_before=$(metric berth_gc_bytes_freed_total | cut -d. -f1)

deleted="$($load delete --url "$url" --password $password --concurrency 16 --list "$work/images.tsv")"
echo "$deleted" >&2
expected_blobs=$(echo "$deleted" | awk '{ print $4 }' | tr -d '(')
expected_bytes=$(echo "$deleted" | awk '{ print $6 }')
rss_before=$(rss_kib)
sleep "$grace"
sweep_started=$(date +%s.%N)
( peak=0; while kill -0 "$berth_pid" 2>/dev/null; do
    rss=$(rss_kib); [ "$rss" -gt "$peak" ] && peak=$rss && echo "$peak" >"$work/peak"
    sleep 0.2
  done ) &
pids+=("$!")
busy="$($load push --url "$url" --password $password --concurrency 4 --seconds 20 --seed busy)"
echo "pushes during the sweep: $busy" >&2
wait_for berth_gc_blobs_deleted_total "$expected_blobs"
sweep_seconds=$(echo "$(date +%s.%N) - $sweep_started" | bc)
peak=$(cat "$work/peak")
read -r objects_after bytes_after < <(stored)
freed_metric=$(( $(metric berth_gc_bytes_freed_total | cut -d. -f1) - freed_before ))
# The store also gained the blobs pushed during the sweep.
pushed_bytes=$(echo "$busy" | awk '{ print $5 }' | tr -d '(')
freed_store=$((bytes_before + pushed_bytes - bytes_after))

idle_mib=$(echo "$idle" | awk '{ print $3 }')
busy_mib=$(echo "$busy" | awk '{ print $3 }')
report="$work/report.txt"
{
  echo "bench/gc.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) storage=$storage grace=${grace}s nproc=$(nproc)"
  echo "$populated"
  echo "drain of the pushes' reviews: ${drain_seconds} s"
  echo "$deleted"
  echo "push, GC idle:           $idle"
  echo "push, during the sweep:  $busy ($(echo "scale=1; 100 * $busy_mib / $idle_mib" | bc)% of idle; target >= 90%)"
  echo "sweep: $expected_blobs blobs and their manifests in ${sweep_seconds} s (with the pushes running for 20 s of it)"
  echo "memory: $((rss_before / 1024)) MiB before the sweep, peak $((peak / 1024)) MiB during it (+$(((peak - rss_before) / 1024)) MiB)"
  echo "blob store: $objects_before objects / $bytes_before bytes before, $objects_after / $bytes_after after, $pushed_bytes bytes pushed meanwhile"
  echo "freed: the blob store lost $freed_store bytes; the metadata counted $freed_metric; the deleted images declared $expected_bytes"
} | tee "$report"
mkdir -p bench/results
cp "$report" "bench/results/gc-$storage-$(date -u +%Y%m%dT%H%M%SZ).txt"
