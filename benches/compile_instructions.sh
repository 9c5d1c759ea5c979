#!/usr/bin/env bash
# Instructions rustc executes to build N #[migration] functions, and the same N async functions
# without the attribute: a count that repeats to within 0.1%, where a VM's wall clock moves by
# +-15% between builds (docs/benchmark-journal.md, "Counted, not timed").
# Usage: bash benches/compile_instructions.sh [N]   (from the repository root; N defaults to 250)
#        MIGRATE_PATH=/other/checkout bash benches/compile_instructions.sh [N]
#                                     (the crates built against another checkout of migrate, for
#                                      an A/B of two commits: `git worktree add /tmp/old REV`)
# Needs valgrind (`apt-get install -y valgrind`); cachegrind runs rustc about 30 times slower.
# Each crate's dependencies are built first, normally; then the crate alone is built once under
# `valgrind --tool=cachegrind --cache-sim=no`, through cargo's workspace wrapper, so that only
# the generated crate's rustc (macro expansion included) is counted; then one migration is
# edited (as compile_time.sh's "touch one" does) and the incremental rebuild is counted too.
# Prints | crate | N | the crate alone | after editing one |.
set -euo pipefail
cd "$(dirname "$0")"
n="${1:-250}"
command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install -y valgrind" >&2; exit 1; }
work="target/compile-instructions"
rm -rf "$work"
mkdir -p "$work"
cargo run --release --quiet -- --emit-compile-crates "$work" "$n"
if [ -n "${MIGRATE_PATH:-}" ]; then
  other=$(cd "$MIGRATE_PATH" && pwd)
  sed -i "s|^migrate = { path = .*|migrate = { path = \"$other\" }|" "$work"/*/Cargo.toml
fi

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
  counted() {
    local log="$PWD/$work/$crate.$1.cachegrind.log"
    COUNT_LOG="$log" RUSTC_WORKSPACE_WRAPPER="$wrapper" \
      cargo build --quiet --manifest-path "$dir/Cargo.toml"
    echo "$(grep -o 'I *refs: *[0-9,]*' "$log" | tr -dc '0-9') / 1000000000" | bc -l
  }
  alone=$(counted alone)
  sed -i '0,/Ok(())/s//let _ = 1;\n    Ok(())/' "$dir/src/lib.rs"
  touched=$(counted touched)
  printf '| %s | %d | %.2f G | %.2f G |\n' "$crate" "$n" "$alone" "$touched"
done
