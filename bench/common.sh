# Sourced by the benchmarks, from the repository's root, for what each starts with:
# - `berth_bin`: the build measured: $BERTH_BIN when set (another build, to compare), else
#   target/release/berth, built first when missing or older than a source file, with the flags
#   cargo-leptos builds the server with so that the two builds share artifacts;
# - `work`: a fresh folder under /tmp; on exit every process in `pids` is stopped and the
#   folder removed;
# - with BENCH_STORAGE=s3, a SeaweedFS for the blobs (below);
# - start_testbed and stop_testbed, for Berth's replicas on PostgreSQL and SeaweedFS.
berth_bin="${BERTH_BIN:-target/release/berth}"
if [ -z "${BERTH_BIN:-}" ] && { [ ! -x target/release/berth ] ||
  [ -n "$(find server app -newer target/release/berth -name '*.rs' -print -quit)" ]; }; then
  echo "building target/release/berth" >&2
  RUSTFLAGS="--cfg erase_components" cargo build --release -p berth --bin berth --no-default-features >&2
fi

work="$(mktemp -d /tmp/berth-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# BENCH_STORAGE=s3 puts Berth's blobs (and docker-registry's, where a benchmark runs one) in the
# bucket `bench` of a SeaweedFS started here on loopback (`weed` from target/tools, as
# scripts/setup test installs it, else from PATH); the metadata stays in SQLite. `berth_env`
# holds the variables that point Berth at it (`env "${berth_env[@]}" "$berth_bin" serve ...`),
# `s3_endpoint` its address, `storage` what the reports say.
berth_env=()
storage="${BENCH_STORAGE:-files}"
s3_key=bench-key
s3_secret=bench-secret
start_seaweedfs() {
  local weed=target/tools/seaweedfs/bin/weed
  [ -x "$weed" ] || weed="$(command -v weed)" ||
    { echo "needs weed (scripts/setup test installs SeaweedFS)" >&2; exit 1; }
  # weed mini also opens each port + 10000 (gRPC); ports are picked at random to run beside tests.
  local base=$((21000 + RANDOM % 8000))
  mkdir -p "$work/seaweedfs"
  AWS_ACCESS_KEY_ID=$s3_key AWS_SECRET_ACCESS_KEY=$s3_secret "$weed" -logdir="$work/seaweedfs" mini \
    -dir="$work/seaweedfs/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -s3.port="$base" \
    -master.port=$((base + 1)) -filer.port=$((base + 2)) -volume.port=$((base + 3)) \
    -admin.port=$((base + 4)) -bucket=bench >"$work/seaweedfs/weed.out" 2>&1 &
  pids+=("$!")
  # The bucket exists once the filer has its folder (the S3 port answers a little earlier).
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base + 2))/buckets/bench/")" = 200 ] && break
    sleep 0.1
  done
  s3_endpoint="http://127.0.0.1:$base"
}
case "$storage" in
  files) ;;
  s3)
    start_seaweedfs
    berth_env=(BERTH_STORAGE_URL=s3://bench/berth AWS_ENDPOINT="$s3_endpoint" AWS_REGION=us-east-1
      AWS_ACCESS_KEY_ID=$s3_key AWS_SECRET_ACCESS_KEY=$s3_secret)
    ;;
  # Berth on PostgreSQL and S3: the benchmark starts a testbed (start_testbed, below).
  postgres-s3)
    [ "${bench_runs_testbed:-}" = yes ] ||
      { echo "BENCH_STORAGE=postgres-s3: $0 does not run on the testbed" >&2; exit 1; }
    ;;
  *) echo "BENCH_STORAGE is files, s3 or postgres-s3, not $storage" >&2; exit 1 ;;
esac

# start_testbed NAME [TESTBED ARGS...] [-- SERVE ARGS...]: starts the testbed
# (server/examples/testbed.rs: PostgreSQL, SeaweedFS, replicas of `berth_bin` behind HAProxy;
# built first when missing or older than its source) with the administrator's password
# bench-password, waits until it is ready and sets testbed_url, replica_urls, replica_pids,
# haproxy_pid, postgres_pid (empty with --embedded) and testbed_env (a file of the variables that
# point a `berth` command at its stores). Stopped on exit, or by stop_testbed.
testbed_bin=target/debug/examples/testbed
start_testbed() {
  local name=$1; shift
  if [ ! -x "$testbed_bin" ] || [ -n "$(find server/examples/testbed.rs server/tests/common/infra.rs \
    -newer "$testbed_bin" -print -quit)" ]; then
    echo "building $testbed_bin" >&2
    # The flags scripts/test builds it with, so that both share their artifacts.
    cargo build -p berth -p app --features app/ssr --example testbed >&2
  fi
  testbed_env="$work/$name.env"
  BERTH_BOOTSTRAP_PASSWORD=bench-password "$testbed_bin" --berth "$berth_bin" \
    --env-file "$testbed_env" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  testbed_pid=$!
  pids+=("$testbed_pid")
  for _ in $(seq 900); do
    grep -q '^testbed ready' "$work/$name.out" && break
    kill -0 "$testbed_pid" 2>/dev/null || { cat "$work/$name.err" >&2; return 1; }
    sleep 0.1
  done
  testbed_url=$(awk '/^testbed: / { print $2; exit }' "$work/$name.out")
  testbed_url=${testbed_url%/}
  haproxy_pid=$(sed -n 's/^testbed: .*(HAProxy pid \([0-9]*\),.*/\1/p' "$work/$name.out")
  postgres_pid=$(sed -n 's/^  postgres pid \([0-9]*\),.*/\1/p' "$work/$name.out")
  mapfile -t replica_urls < <(sed -n 's|^  replica [0-9]*: \(http://[^/]*\)/ .*|\1|p' "$work/$name.out")
  mapfile -t replica_pids < <(sed -n 's/^  replica [0-9]*: .*(pid \([0-9]*\))$/\1/p' "$work/$name.out")
}

# Stops the testbed and waits until its replicas, HAProxy and PostgreSQL are gone.
stop_testbed() {
  kill "$testbed_pid" 2>/dev/null || true
  wait "$testbed_pid" 2>/dev/null || true
  local pid
  for pid in "${replica_pids[@]}" $haproxy_pid $postgres_pid; do
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
}
