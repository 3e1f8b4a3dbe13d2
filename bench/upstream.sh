#!/usr/bin/env bash
# The console in front of a cluster ("proxied") against the same console in-process, on loopback:
# a Berth on its embedded defaults plays the cluster (registry, image stream API, access reviews,
# OAuth); a second Berth serves the console in front of it (--upstream-api/--upstream-registry),
# answering every page with the signed-in user's token.
#   - the upstream is filled through its APIs: namespace big with 10,000 empty image streams (the
#     console bench's fast path: POST imagestreams), namespace team with 200 streams app-000..199
#     of 3 tags v1..v3 each (small config, layer and OCI manifest pushed with the Distribution API);
#   - admin signs in to both consoles as a browser does (authorization code + PKCE at the
#     upstream's OAuth server);
#   - server-rendered HTML of /, /ns/NS, /ns/NS?sort=updated, a stream and an image page: median
#     and p90 of 50 GETs per side after 5 warm-up, and proxied/in-process;
#   - the upstream API calls of one proxied load of each page (the upstream's
#     berth_http_requests_total before and after, its /metrics scrapes left out).
# Targets: proxied within 20% of in-process; at most one upstream call per page section.
#
# Usage: bench/upstream.sh   (needs curl, python3; builds target/release/berth when older than
# the sources; the console's assets come from target/site, built by cargo leptos beforehand).
# Tunables: BENCH_REQUESTS, BENCH_WARMUP, BENCH_BIG_STREAMS, BENCH_TEAM_STREAMS, BENCH_TAGS.
# The report is also written to bench/results/upstream-<UTC time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

password=bench-password
client_id=berth-front
client_secret=front0secret

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
[ -d target/site/pkg ] || { echo "target/site has no console assets: run scripts/build first" >&2; exit 1; }
. bench/common.sh
trap 'exit 130' INT TERM

# Two free loopback ports: the front's must be known before the upstream starts (its OAuth
# client names the front's callback).
read -r upstream_port front_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
upstream="http://127.0.0.1:$upstream_port"
front="http://127.0.0.1:$front_port"

cat >"$work/upstream.toml" <<TOML
[auth]
login_attempts_per_minute = 1000

[[auth.clients]]
id = "$client_id"
secret = "$client_secret"
redirect_uri = "$front/console/callback"
TOML

BERTH_BOOTSTRAP_PASSWORD=$password "$berth_bin" serve --listen "127.0.0.1:$upstream_port" \
  --data-dir "$work/upstream" --config "$work/upstream.toml" --site-dir target/site \
  --log-level warn >"$work/upstream.out" 2>"$work/upstream.err" &
pids+=("$!")
ready() { # waits for $1/readyz; shows the server's stderr ($2) when it never comes
  for _ in $(seq 300); do
    curl -fs -o /dev/null "$1/readyz" && return 0
    sleep 0.1
  done
  echo "$1 did not become ready:" >&2; cat "$2" >&2; exit 1
}
ready "$upstream" "$work/upstream.err"

BERTH_BOOTSTRAP_PASSWORD=$password "$berth_bin" serve --listen "127.0.0.1:$front_port" \
  --data-dir "$work/front" --site-dir target/site --log-level warn \
  --upstream-api "$upstream" --upstream-registry "$upstream" \
  --upstream-client-id "$client_id" --upstream-client-secret "$client_secret" \
  >"$work/front.out" 2>"$work/front.err" &
pids+=("$!")
ready "$front" "$work/front.err"

mkdir -p bench/results
report="bench/results/upstream-$(date -u +%Y%m%dT%H%M%SZ).txt"
if ! python3 bench/upstream.py "$upstream" "$front" "$password" "$report"; then
  echo "--- upstream stderr" >&2; tail -20 "$work/upstream.err" >&2
  echo "--- front stderr" >&2; tail -20 "$work/front.err" >&2
  exit 1
fi
for side in upstream front; do
  if [ -s "$work/$side.err" ]; then
    { echo; echo "$side's warnings (last 5 lines):"; tail -5 "$work/$side.err" | cut -c1-400; } >>"$report"
  fi
done
cat "$report"
