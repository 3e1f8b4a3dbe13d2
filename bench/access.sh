#!/usr/bin/env bash
# What authentication costs a pull: manifest GETs per second with keep-alive (wrk, 2 threads,
# 32 connections, 10 s each) for the same manifest fetched anonymously (anonymous pull granted),
# with a Berth token (Bearer), and with a registry token from the token endpoint (the Docker
# flow podman and docker use). Target: each within 10% of anonymous.
#
# Usage: bench/access.sh (needs curl, wrk; builds target/release/berth when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
port=5111
duration=10
password=bench-password

command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo; $sudo apt-get install -y -qq wrk >/dev/null; }
. bench/common.sh
BERTH_BOOTSTRAP_PASSWORD=$password "$berth_bin" serve --listen "127.0.0.1:$port" \
  --data-dir "$work/data" --log-level warn >"$work/out" 2>"$work/err" &
pids+=("$!")
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done

admin=(-u "admin:$password")
# An image: a config blob and a manifest.
config='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
digest="sha256:$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
curl -fs "${admin[@]}" -o /dev/null -X POST -H 'Content-Type: application/octet-stream' \
  --data-binary "$config" "$base/v2/bench/app/blobs/uploads/?digest=$digest"
manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}' "$digest" "${#config}")
curl -fs "${admin[@]}" -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary "$manifest" "$base/v2/bench/app/manifests/latest"
# Anonymous pull, a token, and a registry token.
curl -fs "${admin[@]}" -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"roleRef":{"name":"viewer"},"subject":{"kind":"Group","name":"system:unauthenticated"}}' \
  "$base/apis/access.berth.io/v1/namespaces/bench/rolebindings"
token=$(curl -fs "${admin[@]}" -X POST -H 'Content-Type: application/json' -d '{}' \
  "$base/apis/access.berth.io/v1/personaltokens" | sed -E 's/.*"token":"([^"]+)".*/\1/')
jwt=$(curl -fs "${admin[@]}" "$base/auth/token?service=berth&scope=repository:bench/app:pull" \
  | sed -E 's/.*"token":"([^"]+)".*/\1/')

rps() {
  wrk -t2 -c32 -d${duration}s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$@" \
    "$base/v2/bench/app/manifests/latest" | awk '/Requests\/sec/ { print $2 }'
}
echo "manifest GETs for ${duration}s each" >&2
anonymous=$(rps)
with_token=$(rps -H "Authorization: Bearer $token")
with_jwt=$(rps -H "Authorization: Bearer $jwt")

mkdir -p bench/results
report="bench/results/access-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  printf 'manifest GET with keep-alive, %s cores, %s\n' "$(nproc)" "$(date -u +%F)"
  printf '%-32s %10s %8s\n' "" "req/s" "vs anon"
  printf '%-32s %10.0f %8s\n' "anonymous" "$anonymous" "1.00"
  printf '%-32s %10.0f %8.2f\n' "Berth token (Bearer)" "$with_token" "$(awk "BEGIN { print $with_token / $anonymous }")"
  printf '%-32s %10.0f %8.2f\n' "registry token (token endpoint)" "$with_jwt" "$(awk "BEGIN { print $with_jwt / $anonymous }")"
} | tee "$report"
