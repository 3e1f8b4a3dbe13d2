#!/usr/bin/env bash
# Pull-through against a direct pull, on loopback, in one run:
#   - a SIZE_MIB blob in an image on Debian's docker-registry (the remote);
#   - Berth imports the image (its layers stay remote);
#   - direct pull of the blob from the remote vs the first pull through Berth (fetched from the
#     remote, stored and streamed at once), MiB/s, and Berth's RSS during it;
#   - a second pull through Berth (served from its own store).
# Target: the first pull through Berth at >= 80% of the direct pull; memory flat.
#
# Usage: bench/pullthrough.sh [SIZE_MIB]   (default 1024). Results go to bench/results/ too.
# BENCH_STORAGE=s3 keeps Berth's blobs in a SeaweedFS bucket (bench/common.sh); the remote's stay
# in its folder.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib="${1:-1024}"
berth_port=5111
registry_port=5112

for tool in curl docker-registry; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup test installs it)" >&2; exit 1; }
done
. bench/common.sh

cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$registry_port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.out" 2>&1 &
registry_pid=$!
pids+=("$registry_pid")
# The registry imported from is on loopback, which the egress policy refuses unless allowed.
env "${berth_env[@]}" BERTH_BOOTSTRAP_PASSWORD=bench-password "$berth_bin" serve --listen "127.0.0.1:$berth_port" \
  --data-dir "$work/berth" --log-level warn --egress-allow 127.0.0.1/32 >"$work/berth.out" 2>"$work/berth.err" &
berth_pid=$!
pids+=("$berth_pid")
for port in $berth_port $registry_port; do
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break
    sleep 0.1
  done
done

remote="http://127.0.0.1:$registry_port"
berth="http://127.0.0.1:$berth_port"
location() { grep -i '^location:' "$1" | tail -1 | cut -d' ' -f2- | tr -d '\r'; }
absolute() { case "$1" in http*) echo "$1" ;; *) echo "$remote$1" ;; esac; }
with_query() { case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }
upload() { # pushes file $1 with digest $2 to the remote's bench/big
  curl -fs -D "$work/h" -o /dev/null -X POST "$remote/v2/bench/big/blobs/uploads/"
  curl -fs -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T "$1" \
    "$(with_query "$(absolute "$(location "$work/h")")" "digest=$2")"
}

echo "generating a ${size_mib} MiB layer and pushing it to docker-registry" >&2
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/layer"
layer="sha256:$(sha256sum "$work/layer" | cut -d' ' -f1)"
upload "$work/layer" "$layer"
printf '%s' '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config"
config="sha256:$(sha256sum "$work/config" | cut -d' ' -f1)"
upload "$work/config" "$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
  "$config" "$(stat -c%s "$work/config")" "$layer" "$((size_mib * 1024 * 1024))" >"$work/manifest"
curl -fs -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @"$work/manifest" "$remote/v2/bench/big/manifests/v1"

echo "importing into Berth" >&2
curl -fs -u admin:bench-password -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"metadata":{"name":"mirror"}}' "$berth/api/v1/namespaces"
curl -fs -u admin:bench-password -o "$work/import.json" -X POST -H 'Content-Type: application/json' \
  -d "{\"metadata\":{\"name\":\"big\"},\"spec\":{\"import\":true,\"images\":[{\"from\":{\"kind\":\"DockerImage\",\"name\":\"127.0.0.1:$registry_port/bench/big:v1\"},\"importPolicy\":{\"insecure\":true},\"referencePolicy\":{\"type\":\"Local\"}}]}}" \
  "$berth/apis/image.openshift.io/v1/namespaces/mirror/imagestreamimports"
grep -q '"status":"Success"' "$work/import.json" || { cat "$work/import.json" >&2; exit 1; }

seconds() { curl -fs "${@:2}" -o /dev/null -w '%{time_total}\n' "$1"; }
calc() { awk "BEGIN { print $1 }"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# A process's CPU time so far (user + system), in seconds.
ticks=$(getconf CLK_TCK)
cpu_s() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }

# Warm the page cache for the remote's file, as a fair direct baseline.
direct=$(seconds "$remote/v2/bench/big/blobs/$layer")
registry_before=$(cpu_s "$registry_pid")
direct=$(seconds "$remote/v2/bench/big/blobs/$layer")
registry_direct=$(calc "$(cpu_s "$registry_pid") - $registry_before")
sleep 1
idle_kib=$(rss_kib "$berth_pid")
: >"$work/rss"
( while kill -0 "$berth_pid" 2>/dev/null; do rss_kib "$berth_pid" >>"$work/rss"; sleep 0.05; done ) &
sampler=$!
berth_before=$(cpu_s "$berth_pid")
registry_before=$(cpu_s "$registry_pid")
first=$(seconds "$berth/v2/mirror/big/blobs/$layer" -u admin:bench-password)
berth_first=$(calc "$(cpu_s "$berth_pid") - $berth_before")
registry_first=$(calc "$(cpu_s "$registry_pid") - $registry_before")
kill "$sampler" 2>/dev/null || true
peak_kib=$(sort -n "$work/rss" | tail -1)
second=$(seconds "$berth/v2/mirror/big/blobs/$layer" -u admin:bench-password)

# What one core hashes per second (SHA-256, 64 KiB blocks), the floor of Berth's own work.
sha_rate=$(openssl speed -seconds 1 -bytes 65536 -evp sha256 2>/dev/null | awk '/^sha256/ { sub("k", "", $2); print $2 * 1000 }')
mkdir -p bench/results
report="bench/results/pullthrough-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  printf 'Pull-through vs direct pull, %s MiB blob, docker-registry %s as the remote, Berth'"'"'s blobs in %s, %s, %s cores\n' \
    "$size_mib" "$(docker-registry --version 2>/dev/null | awk '{print $3}')" "$storage" "$(date -u +%F)" "$(nproc)"
  printf 'direct pull from the remote:          %6.0f MiB/s\n' "$(calc "$size_mib / $direct")"
  printf 'first pull through Berth (fetching):  %6.0f MiB/s  (%.0f%% of direct; target >= 80%%)\n' \
    "$(calc "$size_mib / $first")" "$(calc "100 * $direct / $first")"
  printf 'second pull through Berth (stored):   %6.0f MiB/s\n' "$(calc "$size_mib / $second")"
  printf 'CPU seconds: direct pull: docker-registry %.2f; first pull through Berth: Berth %.2f (its hashing alone about %.2f at openssl speed'"'"'s SHA-256 rate), docker-registry %.2f\n' \
    "$registry_direct" "$berth_first" "$(calc "$size_mib * 1048576 / $sha_rate")" "$registry_first"
  printf 'Berth RSS: idle %d MiB, peak during the first pull %d MiB (%d MiB above idle)\n' \
    "$((idle_kib / 1024))" "$((peak_kib / 1024))" "$(((peak_kib - idle_kib) / 1024))"
} | tee "$report"
