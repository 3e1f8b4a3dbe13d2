#!/usr/bin/env bash
# A layer's files on the release build, through the console's server functions:
#   1. a ~1 GB (uncompressed) gzip layer is made from this machine's /usr (real files, up to
#      SIZE_MB), with a file `zz-last/marker` at its very end, and pushed with a manifest;
#   2. the layer's root listing is asked twice: the first indexes the layer (decoding it once),
#      the second reads the kept index (a restart in between, so memory does not answer it);
#   3. the marker near the end is read (file-text): from the checkpoint before it, not the
#      layer's start;
#   4. Berth's peak resident memory (VmHWM) before and after the indexing.
# Also with COMPRESSION=zstd (one frame per ZSTD_FRAME_MB, as chunked writers make them).
#
# Usage: bench/layers.sh [SIZE_MB]   (needs curl, gzip or zstd; BERTH_BIN runs another build).
# Results are also written to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mb="${1:-1024}"
compression="${COMPRESSION:-gzip}"
frame_mb="${ZSTD_FRAME_MB:-16}"
port=5117
password=bench-password

. bench/common.sh
trap 'status=$?; [ "$status" -ne 0 ] && tail -30 "$work/berth.err" >&2; cleanup' EXIT
url="http://127.0.0.1:$port"

start_berth() {
  env "${berth_env[@]}" BERTH_BOOTSTRAP_PASSWORD=$password "$berth_bin" serve \
    --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn \
    >>"$work/berth.out" 2>>"$work/berth.err" &
  berth_pid=$!
  pids+=("$berth_pid")
  for _ in $(seq 200); do
    curl -fs -u "admin:$password" "$url/v2/" >/dev/null && return
    sleep 0.1
  done
  echo "berth did not start:" >&2
  exit 1
}

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$berth_pid/status"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$berth_pid/status"; }

# The layer: /usr's files (sorted, up to the size), then the marker. awk reads to the end, so
# that sort is not cut off (a SIGPIPE fails the pipeline).
echo "making a ${size_mb} MB $compression layer from /usr" >&2
mkdir -p "$work/tree/zz-last"
echo "the last file of the layer" >"$work/tree/zz-last/marker"
tarball="$work/layer.tar"
(cd / && find usr -xdev -type f -size -8M -readable -printf '%s %p\n' 2>/dev/null | sort -k2) |
  awk -v max=$((size_mb * 1000000)) '{ total += $1 + 512; size = $1; sub(/^[0-9]+ /, ""); if (total <= max) print }' >"$work/usr-files"
tar -C / --no-recursion -cf "$tarball" -T "$work/usr-files"
tar -C "$work/tree" -rf "$tarball" zz-last/marker
case "$compression" in
  gzip) gzip -1 -c "$tarball" >"$work/layer" ;;
  zstd) split -b "${frame_mb}M" --filter='zstd -3 -q -c' "$tarball" >"$work/layer" ;;
esac
uncompressed=$(stat -c %s "$tarball")
rm "$tarball"
layer_size=$(stat -c %s "$work/layer")
layer_digest="sha256:$(sha256sum "$work/layer" | cut -d' ' -f1)"
entries=$(($(wc -l <"$work/usr-files") + 1))

start_berth
curl -fs -u "admin:$password" -X POST -H 'content-type: application/octet-stream' \
  --data-binary "@$work/layer" "$url/v2/bench/layers/blobs/uploads/?digest=$layer_digest" >/dev/null
config='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
config_digest="sha256:$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)"
curl -fs -u "admin:$password" -X POST -H 'content-type: application/octet-stream' \
  --data-binary "$config" "$url/v2/bench/layers/blobs/uploads/?digest=$config_digest" >/dev/null
manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
  "$config_digest" "${#config}" "$layer_digest" "$layer_size")
curl -fs -u "admin:$password" -X PUT -H 'content-type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary "$manifest" "$url/v2/bench/layers/manifests/v1" >/dev/null
image="sha256:$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)"

listing="$url/console/api/layer-files?namespace=bench&stream=layers&image=$image&layer=$layer_digest&dir=&search=&offset=0"
seconds() { # URL FILE
  curl -fs -u "admin:$password" -o "$2" -w '%{time_total}' "$1"
}
hwm_before=$(hwm_kib)
first=$(seconds "$listing" "$work/first.json")
hwm_after=$(hwm_kib)
kill "$berth_pid"; wait "$berth_pid" 2>/dev/null || true
start_berth
second=$(seconds "$listing" "$work/second.json")
cached=$(seconds "$listing" "$work/third.json")
search="$url/console/api/layer-files?namespace=bench&stream=layers&image=$image&layer=$layer_digest&dir=&search=zz-last%2Fmarker&offset=0"
curl -fs -u "admin:$password" "$search" >"$work/search.json"
entry=$(grep -o '"entry":[0-9]*' "$work/search.json" | head -1 | cut -d: -f2)
text="$url/console/api/file-text?namespace=bench&stream=layers&image=$image&layer=$layer_digest&entry=$entry"
read_last=$(seconds "$text" "$work/text.json")
grep -q 'the last file of the layer' "$work/text.json" || { echo "marker not read: $(cat "$work/text.json")" >&2; exit 1; }
total=$(grep -o '"total":[0-9]*' "$work/second.json" | cut -d: -f2)
index_bytes=$(find "$work/data/indexes" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')

mkdir -p bench/results
report="bench/results/layers-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "layer: $compression, $((layer_size / 1000000)) MB compressed, $((uncompressed / 1000000)) MB uncompressed, $total entries (about $entries files), storage $storage"
  echo "first open (indexing):          ${first} s"
  echo "second open (after a restart):  ${second} s"
  echo "third open (index in memory):   ${cached} s"
  echo "reading the last file:          ${read_last} s"
  echo "index kept beside the blob:     $((index_bytes / 1024)) KiB"
  echo "peak memory before indexing:    $((hwm_before / 1024)) MiB"
  echo "peak memory after indexing:     $((hwm_after / 1024)) MiB"
  echo "memory after restart and reads: $(( $(rss_kib) / 1024 )) MiB resident"
} | tee "$report"
