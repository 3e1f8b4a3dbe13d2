#!/usr/bin/env bash
# What quotas cost a push: the latency of manifest PUTs (each a new image, tagged, its config
# and layer uploaded beforehand) into a namespace without quota objects, one with a
# ResourceQuota (berth.io/storage and openshift.io/imagestreams), and one with that and a
# LimitRange of every openshift.io/Image and openshift.io/ImageStream limit, all far from
# reached, so that every push there reads and measures all of them (the stream's tags and
# history grow to ROUNDS x PUSHES). The namespaces take turns in rounds, so that a slower phase
# of the machine weighs on each alike.
#
# Usage: bench/quota.sh [PUSHES_PER_ROUND] [ROUNDS] (default 200 x 5; needs curl and python3;
# builds target/release/berth when missing). BENCH_DATABASE=postgres puts the metadata in a
# PostgreSQL cluster started here (Debian's postgresql binaries), as replicas keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
pushes=${1:-200}
rounds=${2:-5}
port=5113
password=bench-password

. bench/common.sh
database_env=()
database="${BENCH_DATABASE:-sqlite}"
if [ "$database" = postgres ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  [ "$(id -u)" -eq 0 ] && pg_user=(runuser -u postgres --) || pg_user=()
  mkdir -p "$work/pg" && chmod 777 "$work" "$work/pg"
  "${pg_user[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U berth -A trust >/dev/null
  "${pg_user[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -o "-p 5499 -k $work/pg -c listen_addresses=127.0.0.1" \
    -l "$work/pg/log" start >/dev/null
  pids+=("$(head -1 "$work/pg/data/postmaster.pid")")
  database_env=(BERTH_DATABASE_URL="postgres://berth@127.0.0.1:5499/postgres")
fi

env "${database_env[@]}" BERTH_BOOTSTRAP_PASSWORD=$password "$berth_bin" serve \
  --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn >"$work/out" 2>"$work/err" &
pids+=("$!")
base="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done

admin=(-fs -u "admin:$password" -o /dev/null -H 'Content-Type: application/json')
for namespace in plain quota limited; do
  curl "${admin[@]}" -X POST -d "{\"metadata\":{\"name\":\"$namespace\"}}" "$base/api/v1/namespaces"
done
for namespace in quota limited; do
  curl "${admin[@]}" -X POST "$base/api/v1/namespaces/$namespace/resourcequotas" -d '{
    "metadata": {"name": "registry"},
    "spec": {"hard": {"berth.io/storage": "100Gi", "openshift.io/imagestreams": "1000"}}}'
done
curl "${admin[@]}" -X POST "$base/api/v1/namespaces/limited/limitranges" -d '{
  "metadata": {"name": "images"},
  "spec": {"limits": [
    {"type": "openshift.io/Image", "max": {"storage": "1Gi"}},
    {"type": "openshift.io/ImageStream",
     "max": {"openshift.io/images": "100000", "openshift.io/image-tags": "100000"}}]}}'

python3 - "$base" "$password" "$pushes" "$rounds" "$storage" "$database" <<'PY'
import base64, hashlib, http.client, json, statistics, sys, time, urllib.parse

base, password, pushes, rounds, storage, database = sys.argv[1:7]
pushes, rounds = int(pushes), int(rounds)
url = urllib.parse.urlparse(base)
connection = http.client.HTTPConnection(url.hostname, url.port)
auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()

def request(method, path, body=b"", content_type="application/octet-stream"):
    connection.request(method, path, body, {"Authorization": auth, "Content-Type": content_type})
    response = connection.getresponse()
    response.read()
    if response.status >= 300:
        sys.exit(f"{method} {path}: {response.status}")

def image(namespace, n):
    """Uploads a new image's config (and a small layer) and answers its manifest."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Env": [f"N={namespace}-{n}"]},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = f"layer {namespace} {n}".encode() * 64
    descriptors = []
    for blob, media_type in [(config, "application/vnd.oci.image.config.v1+json"),
                             (layer, "application/vnd.oci.image.layer.v1.tar+gzip")]:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        request("POST", f"/v2/{namespace}/app/blobs/uploads/?digest={digest}", blob)
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
    return json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": descriptors[0], "layers": descriptors[1:]}).encode()

namespaces = [("plain", "no quota objects"), ("quota", "a ResourceQuota"),
              ("limited", "and a LimitRange")]
timings = {namespace: [] for namespace, _ in namespaces}
for round_ in range(rounds):
    for namespace, _ in namespaces:
        manifests = [image(namespace, round_ * pushes + i) for i in range(pushes)]
        for i, manifest in enumerate(manifests):
            started = time.perf_counter()
            request("PUT", f"/v2/{namespace}/app/manifests/v{round_ * pushes + i}", manifest,
                    "application/vnd.oci.image.manifest.v1+json")
            timings[namespace].append(time.perf_counter() - started)

print(f"manifest PUT, {rounds} x {pushes} new tagged images per namespace "
      f"({database} metadata, blobs on {storage}):")
plain = statistics.mean(timings["plain"])
for namespace, label in namespaces:
    t = sorted(timings[namespace])
    print(f"  {label:>16}: mean {statistics.mean(t) * 1000:.2f} ms "
          f"({statistics.mean(t) / plain:.2f}x), p50 {t[len(t) // 2] * 1000:.2f} ms, "
          f"p95 {t[int(len(t) * 0.95)] * 1000:.2f} ms")
PY
