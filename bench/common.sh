# Sourced by the benchmarks, from the repository's root, for what each starts with:
# - `berth_bin`: the build measured: $BERTH_BIN when set (another build, to compare), else
#   target/release/berth, built first when missing or older than a source file, with the flags
#   cargo-leptos builds the server with so that the two builds share artifacts;
# - `work`: a fresh folder under /tmp; on exit every process in `pids` is stopped and the
#   folder removed.
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
