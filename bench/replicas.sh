#!/usr/bin/env bash
# Manifest GETs by tag (wrk, keep-alive) on PostgreSQL + SeaweedFS, through HAProxy over 1, 2
# and 3 replicas against one replica addressed directly, each on a fresh testbed
# (server/examples/testbed.rs). Every process shares this machine's cores, so more replicas add
# no CPU: the target is that the balancer and the extra replicas cost at most 15% of the direct
# figure. HAProxy balances each request (mode http), and in a last run each connection (mode
# tcp, as a Kubernetes Service does). For each run, the CPU time per request of every process
# (from /proc: the replicas, HAProxy, PostgreSQL and its backends, wrk), what else ran on the
# machine meanwhile, and the replicas' context switches per request; from those, how throughput
# grows with cores and replicas.
#
# Usage: bench/replicas.sh [SECONDS]   (default 10 per run; needs wrk, curl, haproxy, PostgreSQL
# and SeaweedFS: scripts/setup test installs them). Results are also written to bench/results/.
# BERTH_BIN runs another build instead of target/release/berth; BENCH_SERVE_ARGS adds arguments
# to every replica's `berth serve` (such as `--config FILE` with another `[database] pool_size`).
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-10}"
for tool in wrk curl haproxy; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup test installs it)" >&2; exit 1; }
done
. bench/common.sh

ticks=$(getconf CLK_TCK)
# CPU nanoseconds every thread of the processes has run, from the scheduler's own count
# (/proc/PID/task/TID/schedstat): utime and stime are sampled at each tick, which misses much of
# PostgreSQL backends' many short runs.
cpu_ns() {
  local pid total=0
  for pid in "$@"; do
    total=$((total + $(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.0f", n }')))
  done
  echo "$total"
}
# PostgreSQL's processes (the postmaster and its backends), each with its CPU nanoseconds.
postgres_snapshot() {
  local pid
  for pid in "$postgres_pid" $(pgrep -P "$postgres_pid"); do echo "$pid $(cpu_ns "$pid")"; done
}
# CPU nanoseconds PostgreSQL used between two snapshots: a backend that began meanwhile counts
# whole; one that ended took its time with it (said on stderr).
postgres_delta() {
  awk 'NR == FNR { before[$1] = $2; next }
       { total += $2 - ($1 in before ? before[$1] : 0); seen[$1] = 1 }
       END { for (pid in before) if (!(pid in seen)) gone++
             if (gone) printf "%d PostgreSQL backends ended during the run: their CPU is missed\n", gone > "/dev/stderr"
             printf "%.0f", total }' "$1" "$2"
}
# Busy ticks of the whole machine (all but idle and iowait), from /proc/stat.
machine_busy() { awk '/^cpu / { printf "%.0f", $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# wrk's CPU: this shell's waited-for children (fields 16 and 17 of its stat).
children_ticks() { sed 's/.*) //' "/proc/$$/stat" | awk '{ printf "%.0f", $14 + $15 }'; }

# One manifest (config and a small layer) at bench/app:latest, pullable anonymously.
auth=(-u admin:bench-password)
push_blob() { # BASE CONTENT: pushes CONTENT as a blob, prints its digest
  local digest; digest="sha256:$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)"
  curl -fs "${auth[@]}" -o /dev/null -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary "$2" "$1/v2/bench/app/blobs/uploads/?digest=$digest"
  echo "$digest"
}
push_manifest() {
  local base=$1 config='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
  local layer=layer-bytes config_digest layer_digest
  config_digest=$(push_blob "$base" "$config")
  layer_digest=$(push_blob "$base" "$layer")
  curl -fs "${auth[@]}" -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
      "$config_digest" "${#config}" "$layer_digest" "${#layer}")" "$base/v2/bench/app/manifests/latest"
  curl -fs "${auth[@]}" -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"roleRef":{"name":"viewer"},"subject":{"kind":"Group","name":"system:unauthenticated"}}' \
    "$base/apis/access.berth.io/v1/namespaces/bench/rolebindings"
}

# Context switches (voluntary and not) of every thread of the processes.
switches() {
  local pid total=0
  for pid in "$@"; do
    total=$((total + $(cat /proc/"$pid"/task/*/status 2>/dev/null |
      awk '/ctxt_switches/ { n += $2 } END { printf "%.0f", n }')))
  done
  echo "$total"
}

# measure LABEL URL: wrk for $duration s (twice; the better run counts, as other work on the
# machine only slows a run), then one line of results: requests per second; CPU microseconds
# per request of the replicas, HAProxy, PostgreSQL (with its backends), wrk and everything
# else on the machine; the replicas' context switches per request; how busy the machine was.
measure() {
  local label=$1 url=$2 best=""
  # Warm-up: connections, caches, the database's plans.
  wrk -t2 -c32 -d2s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url/v2/bench/app/manifests/latest" >/dev/null
  for _ in 1 2; do
    local r0 h0 p0 w0 m0 s0 t0 r1 h1 p1 w1 m1 s1 t1
    r0=$(cpu_ns "${replica_pids[@]}"); h0=$(cpu_ns "$haproxy_pid"); postgres_snapshot >"$work/pg0"
    s0=$(switches "${replica_pids[@]}"); w0=$(children_ticks); m0=$(machine_busy); t0=$(date +%s.%N)
    wrk -t2 -c32 -d"${duration}s" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      "$url/v2/bench/app/manifests/latest" >"$work/wrk.out"
    t1=$(date +%s.%N); m1=$(machine_busy); w1=$(children_ticks); s1=$(switches "${replica_pids[@]}")
    r1=$(cpu_ns "${replica_pids[@]}"); h1=$(cpu_ns "$haproxy_pid"); postgres_snapshot >"$work/pg1"
    if grep -q 'Non-2xx' "$work/wrk.out"; then
      echo "$label: $(grep 'Non-2xx' "$work/wrk.out")" >&2
    fi
    local row
    row=$(awk -v label="$label" -v t="$ticks" -v cores="$(nproc)" -v elapsed="$(awk "BEGIN { print $t1 - $t0 }")" \
      -v n="$(awk '/requests in/ { print $1 }' "$work/wrk.out")" \
      -v rps="$(awk '/Requests\/sec/ { print $2 }' "$work/wrk.out")" \
      -v r=$((r1 - r0)) -v h=$((h1 - h0)) -v p="$(postgres_delta "$work/pg0" "$work/pg1")" -v w=$((w1 - w0)) -v m=$((m1 - m0)) \
      -v sw=$((s1 - s0)) \
      'BEGIN {
         tick = 1000000 / t  # microseconds
         r /= 1000; h /= 1000; p /= 1000; w *= tick; m *= tick  # all in microseconds
         rest = m - r - h - p - w; if (rest < 0) rest = 0
         printf "%-34s %8.0f %9.1f %8.1f %9.1f %6.1f %6.1f %9.2f %6.0f%%\n", label, rps, r / n, h / n, p / n, w / n, rest / n, sw / n, 100 * m / 1000000 / elapsed / cores
       }')
    if [ -z "$best" ] || [ "$(echo "$row" | awk '{ print $(NF - 7) }' | cut -d. -f1)" -gt \
      "$(echo "$best" | awk '{ print $(NF - 7) }' | cut -d. -f1)" ]; then
      best=$row
    fi
  done
  echo "$best" | tee -a "$work/rows"
}

: >"$work/rows"
for n in 1 2 3; do
  echo "testbed with $n replica(s)" >&2
  start_testbed "replicas$n" --replicas "$n" -- --log-level warn ${BENCH_SERVE_ARGS:-}
  push_manifest "$testbed_url"
  if [ "$n" = 1 ]; then
    measure "1 replica, direct" "${replica_urls[0]}"
  fi
  measure "$n replica(s) behind HAProxy" "$testbed_url"
  stop_testbed
done
# HAProxy as a TCP balancer (each connection to one replica), as a Kubernetes Service is.
echo "testbed with 3 replicas, balancing connections" >&2
start_testbed replicas3tcp --replicas 3 --balance connections -- --log-level warn ${BENCH_SERVE_ARGS:-}
push_manifest "$testbed_url"
measure "3 replicas behind HAProxy (TCP)" "$testbed_url"
stop_testbed

# --- report ----------------------------------------------------------------------------------------
mkdir -p bench/results
report="bench/results/replicas-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  printf 'Manifest GET by tag, PostgreSQL + SeaweedFS, Berth %s %s, wrk -t2 -c32 %ss (better of 2), %s, %s cores\n' \
    "$berth_bin" "${BENCH_SERVE_ARGS:-}" "$duration" "$(date -u +%F)" "$(nproc)"
  printf '%-34s %8s %44s %9s %7s\n' "" "" "CPU microseconds per request" "replica" "machine"
  printf '%-34s %8s %9s %8s %9s %6s %6s %9s %7s\n' "" "req/s" "replicas" "HAProxy" "Postgres" "wrk" "other" "switches" "busy"
  cat "$work/rows"
  awk '
    NR == 1 { direct = $(NF - 7) }
    NR > 1 { label = substr($0, 1, 34); sub(/ +$/, "", label); printf "%s: %.0f%% of direct\n", label, 100 * $(NF - 7) / direct }
  ' "$work/rows"
  # The model: with the client elsewhere, each request costs the servers (replicas + HAProxy +
  # PostgreSQL) their CPU time; throughput is the cores given to each tier over its CPU per
  # request, the smallest of the tiers.
  awk '
    /^1 replica, direct/ { r = $(NF - 6); p = $(NF - 4) }
    /^1 replica\(s\) behind/ { h = $(NF - 5) }
    /^3 replica\(s\) behind/ { r3 = $(NF - 6); p3 = $(NF - 4) }
    END {
      printf "model (CPU microseconds per request: replica %.1f, HAProxy %.1f, PostgreSQL %.1f; with 3 replicas on these 2 cores %.1f and %.1f):\n", r, h, p, r3, p3
      printf "  one machine of C cores running everything: about C x %.0f req/s (C x %.0f without HAProxy)\n", 1000000 / (r + h + p), 1000000 / (r + p)
      printf "  replicas on cores of their own: about %.0f req/s per replica core, until HAProxy (%.0f req/s per core) or PostgreSQL (%.0f req/s per core) is the limit\n", 1000000 / r, 1000000 / h, 1000000 / p
    }
  ' "$work/rows"
} | tee "$report"
