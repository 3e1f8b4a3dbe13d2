#!/usr/bin/env bash
# Berth side by side with Debian's docker-registry (CNCF distribution 2.8) on loopback, in one run:
#   - push of a 1 GiB blob (POST, one streamed PATCH, PUT ?digest=), MiB/s
#   - pull of that blob, MiB/s (median of 3)
#   - manifest GETs by tag per second with keep-alive (wrk, 2 threads, 32 connections, 10 s)
#   - Berth's resident memory while the 1 GiB push and the pulls run, above its idle level
# and prints Berth's ratio to docker-registry for each.
#
# Usage: bench/registry.sh [SIZE_MIB]   (default 1024; needs curl, wrk, docker-registry:
# installed from Debian when missing). Results are also written to bench/results/.
# BENCH_STORAGE says where both registries keep their data:
#   - files (the default): Berth on SQLite and the data folder, docker-registry's filesystem
#     driver. Targets: push and pull >= 1x, manifest GETs >= 2x, memory < 100 MiB above idle.
#   - s3: Berth on SQLite with its blobs in a SeaweedFS bucket (bench/common.sh), docker-registry's
#     s3 driver on the same bucket.
#   - postgres-s3: Berth on PostgreSQL and SeaweedFS (one replica of the testbed,
#     server/examples/testbed.rs, addressed directly), docker-registry's s3 driver on the same
#     bucket. Targets: push and pull >= 1x, manifest GETs >= 3x, memory flat.
# docker-registry's s3 driver runs with redirects off (every byte through the registry).
# BERTH_BIN runs another build (an older one, to compare) instead of target/release/berth.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib="${1:-1024}"
duration=10

missing=()
for tool in curl wrk docker-registry; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bench_runs_testbed=yes
. bench/common.sh

# --- the two registries -------------------------------------------------------------------------
registry_url=http://127.0.0.1:5102
# docker-registry's s3 driver: endpoint, key, secret, bucket.
registry_on_s3() {
  registry_storage="  s3:
    accesskey: $2
    secretkey: $3
    region: us-east-1
    regionendpoint: $1
    bucket: $4
    secure: false
    v4auth: true
    rootdirectory: /registry
  redirect:
    disable: true"
}
if [ "$storage" = postgres-s3 ]; then
  start_testbed berth --replicas 1 -- --log-level warn
  berth_url=${replica_urls[0]}
  berth_pid=${replica_pids[0]}
  # The testbed's bucket and credentials, from the variables it gives a berth command.
  # shellcheck disable=SC1090
  . "$testbed_env"
  bucket=${BERTH_STORAGE_URL#s3://}
  registry_on_s3 "$AWS_ENDPOINT" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "${bucket%%/*}"
else
  berth_url=http://127.0.0.1:5101
  env "${berth_env[@]}" BERTH_BOOTSTRAP_PASSWORD=bench-password "$berth_bin" serve --listen "${berth_url#http://}" \
    --data-dir "$work/berth" --log-level warn >"$work/berth.out" 2>"$work/berth.err" &
  berth_pid=$!
  pids+=("$berth_pid")
  if [ "$storage" = s3 ]; then
    registry_on_s3 "$s3_endpoint" "$s3_key" "$s3_secret" bench
  else
    registry_storage="  filesystem:
    rootdirectory: $work/registry"
  fi
fi

cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
$registry_storage
  delete:
    enabled: true
http:
  addr: ${registry_url#http://}
YAML
# The Go SDK of its s3 driver fails on this machine's AWS_CA_BUNDLE.
env -u AWS_CA_BUNDLE docker-registry serve "$work/registry.yml" >"$work/registry.out" 2>&1 &
pids+=("$!")

for url in "$berth_url" "$registry_url"; do
  for _ in $(seq 100); do
    curl -fs -o /dev/null "$url/v2/" && break
    sleep 0.1
  done
done

# --- data -----------------------------------------------------------------------------------------
blob="$work/blob"
echo "generating a ${size_mib} MiB blob" >&2
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$blob"
digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"

# Berth wants credentials (docker-registry here has none): the administrator's password.
auth_for() {
  if [ "$1" = "$berth_url" ]; then echo "-u admin:bench-password"; fi
}

absolute() { # a Location header made absolute
  case "$2" in http*) echo "$2" ;; *) echo "$1$2" ;; esac
}
with_query() { # appends a query parameter to a URL that may already have some
  case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac
}
location_of() { # the Location header of a response's headers file
  grep -i '^location:' "$1" | tail -1 | cut -d' ' -f2- | tr -d '\r'
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# Pushes the blob to the registry at $1; prints seconds.
push_blob() {
  local url=$1 repo=$2
  curl -fs $(auth_for "$url") -D "$work/h1" -o /dev/null -X POST "$url/v2/$repo/blobs/uploads/"
  local upload; upload="$(absolute "$url" "$(location_of "$work/h1")")"
  local started; started=$(date +%s.%N)
  curl -fs $(auth_for "$url") -D "$work/h2" -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
    -T "$blob" "$upload"
  upload="$(absolute "$url" "$(location_of "$work/h2")")"
  curl -fs $(auth_for "$url") -o /dev/null -X PUT "$(with_query "$upload" "digest=$digest")"
  calc "$(date +%s.%N) - $started"
}

pull_seconds() {
  curl -fs $(auth_for "$1") -o /dev/null -w '%{time_total}\n' "$1/v2/$2/blobs/$digest"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
calc() { awk "BEGIN { print $1 }"; }
rate() { calc "$size_mib / $1"; }

# Samples Berth's RSS into $work/rss.$1 until stop_sampling.
start_sampling() {
  : >"$work/rss.$1"
  ( while kill -0 "$berth_pid" 2>/dev/null; do rss_kib "$berth_pid" >>"$work/rss.$1"; sleep 0.05; done ) &
  sampler=$!
}
stop_sampling() { kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; }
peak_kib() { sort -n "$work/rss.$1" | tail -1; }

# --- push, with Berth's memory sampled throughout ------------------------------------------------
sleep 1
idle_kib=$(rss_kib "$berth_pid")
start_sampling push
echo "pushing to Berth" >&2
berth_push=$(push_blob "$berth_url" bench/blob)
stop_sampling
echo "pushing to docker-registry" >&2
registry_push=$(push_blob "$registry_url" bench/blob)

# --- pull ------------------------------------------------------------------------------------------
echo "pulling" >&2
berth_pulls=(); registry_pulls=()
for _ in 1 2 3; do
  start_sampling pull
  berth_pulls+=("$(pull_seconds "$berth_url" bench/blob)")
  stop_sampling
  cat "$work/rss.pull" >>"$work/rss.pulls"
  registry_pulls+=("$(pull_seconds "$registry_url" bench/blob)")
done
berth_pull=$(printf '%s\n' "${berth_pulls[@]}" | median)
registry_pull=$(printf '%s\n' "${registry_pulls[@]}" | median)

# --- manifest GETs ---------------------------------------------------------------------------------
config='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
config_digest="sha256:$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
  "$config_digest" "${#config}" "$digest" "$((size_mib * 1024 * 1024))")
for url in "$berth_url" "$registry_url"; do
  curl -fs $(auth_for "$url") -D "$work/h3" -o /dev/null -X POST "$url/v2/bench/blob/blobs/uploads/"
  curl -fs $(auth_for "$url") -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "$config" \
    "$(with_query "$(absolute "$url" "$(location_of "$work/h3")")" "digest=$config_digest")"
  curl -fs $(auth_for "$url") -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "$manifest" "$url/v2/bench/blob/manifests/latest"
done
# Anonymous pull of the namespace on Berth, as docker-registry serves everyone.
curl -fs -u admin:bench-password -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"roleRef":{"name":"viewer"},"subject":{"kind":"Group","name":"system:unauthenticated"}}' \
  "$berth_url/apis/access.berth.io/v1/namespaces/bench/rolebindings"
manifest_rps() {
  wrk -t2 -c32 -d${duration}s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$1/v2/bench/blob/manifests/latest" | awk '/Requests\/sec/ { print $2 }'
}
echo "manifest GETs for ${duration}s each" >&2
berth_rps=$(manifest_rps "$berth_url")
registry_rps=$(manifest_rps "$registry_url")

# --- report ----------------------------------------------------------------------------------------
mkdir -p bench/results
report="bench/results/registry-$storage-$(date -u +%Y%m%dT%H%M%SZ).txt"
push_peak=$(peak_kib push)
pull_peak=$(sort -n "$work/rss.pulls" | tail -1)
{
  printf 'Berth (%s) vs docker-registry %s, %s MiB blob, storage %s, %s, %s cores\n' "$berth_bin" \
    "$(docker-registry --version 2>/dev/null | awk '{print $3}')" "$size_mib" "$storage" "$(date -u +%F)" "$(nproc)"
  printf '%-28s %14s %16s %8s\n' "" "Berth" "docker-registry" "ratio"
  printf '%-28s %14.0f %16.0f %7.2fx\n' "push (MiB/s)" "$(rate "$berth_push")" "$(rate "$registry_push")" \
    "$(calc "$registry_push / $berth_push")"
  printf '%-28s %14.0f %16.0f %7.2fx\n' "pull (MiB/s, median of 3)" "$(rate "$berth_pull")" "$(rate "$registry_pull")" \
    "$(calc "$registry_pull / $berth_pull")"
  printf '%-28s %14.0f %16.0f %7.2fx\n' "manifest GET (req/s)" "$berth_rps" "$registry_rps" \
    "$(calc "$berth_rps / $registry_rps")"
  printf 'Berth RSS: idle %d MiB; peak during the push %d MiB (%d above idle), during the pulls %d MiB (%d above idle)\n' \
    "$((idle_kib / 1024))" "$((push_peak / 1024))" "$(((push_peak - idle_kib) / 1024))" \
    "$((pull_peak / 1024))" "$(((pull_peak - idle_kib) / 1024))"
} | tee "$report"
