#!/usr/bin/env bash
# Instructions rustc executes to build N #[migration] functions, and the same N async functions
# without the attribute: a count that repeats to within 0.1%, where a VM's wall clock moves by
# +-15% between builds (BENCHMARKS.md, "Counted, not timed").
# Usage: bash benches/compile_instructions.sh [N]   (from the repository root; N defaults to 250)
# Needs valgrind (`apt-get install -y valgrind`); cachegrind runs rustc about 30 times slower.
# Each crate's dependencies are built first, normally; then the crate alone is built once under
# `valgrind --tool=cachegrind --cache-sim=no`, through cargo's workspace wrapper, so that only
# the generated crate's rustc (macro expansion included) is counted.
set -euo pipefail
cd "$(dirname "$0")"
n="${1:-250}"
command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install -y valgrind" >&2; exit 1; }
work="target/compile-instructions"
rm -rf "$work"
mkdir -p "$work"
cargo run --release --quiet -- --emit-compile-crates "$work" "$n"

wrapper="$PWD/$work/count-rustc.sh"
cat > "$wrapper" <<'EOF'
#!/usr/bin/env bash
# cargo's workspace wrapper: `count-rustc.sh rustc ARGS...`; counts the build, not cargo's probes.
rustc="$1"; shift
case " $* " in
  *" --crate-name compile_"*)
    exec valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
      --log-file="$COUNT_LOG" "$rustc" "$@" ;;
  *) exec "$rustc" "$@" ;;
esac
EOF
chmod +x "$wrapper"

for crate in ours plain; do
  dir="$work/$crate"
  export CARGO_TARGET_DIR="$PWD/$work/target-$crate"
  cargo build --quiet --manifest-path "$dir/Cargo.toml"
  cargo clean --quiet --manifest-path "$dir/Cargo.toml" -p "compile_$crate"
  log="$PWD/$work/$crate.cachegrind.log"
  COUNT_LOG="$log" RUSTC_WORKSPACE_WRAPPER="$wrapper" \
    cargo build --quiet --manifest-path "$dir/Cargo.toml"
  refs=$(grep -o 'I *refs: *[0-9,]*' "$log" | tr -dc '0-9')
  printf '| %s | %d | %.2f G |\n' "$crate" "$n" "$(echo "$refs / 1000000000" | bc -l)"
done
