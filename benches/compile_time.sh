#!/usr/bin/env bash
# Compile time of N #[migration] functions, of the same N async functions without the attribute
# (the floor: what the functions themselves cost), of the same N steps as SQL files read by
# migrate::sql_dir! (one per table), and of sqlx's migrate! embedding N files.
# Usage: bash benches/compile_time.sh [N]   (from the repository root; N defaults to 1000)
# Each crate is built three times in a target directory of its own:
#   clean      everything from nothing, dependencies included;
#   crate only the migrations crate alone, its dependencies already built;
#   touch one  after editing one migration (incremental).
set -euo pipefail
cd "$(dirname "$0")"
n="${1:-1000}"
work="target/compile-bench"
rm -rf "$work"
cargo run --release --quiet -- --emit-compile-crates "$work" "$n"

# Seconds a command takes; a command that fails stops the script (a failed build is not a time).
time_cmd() {
  local start end log
  log=$(mktemp)
  start=$(date +%s.%N)
  if ! "$@" >"$log" 2>&1; then
    echo "failed: $*" >&2
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  end=$(date +%s.%N)
  rm -f "$log"
  echo "$end - $start" | bc
}

mid=$(( (n + 1) / 2 ))
for crate in ours plain sql sqlx; do
  dir="$work/$crate"
  export CARGO_TARGET_DIR="$PWD/$work/target-$crate"
  clean=$(time_cmd cargo build --manifest-path "$dir/Cargo.toml")
  cargo clean --manifest-path "$dir/Cargo.toml" -p "compile_$crate" >/dev/null 2>&1
  alone=$(time_cmd cargo build --manifest-path "$dir/Cargo.toml")
  # "After editing one migration": the first function, or the middle file (any N).
  case "$crate" in
    sqlx) echo "-- touched" >> "$dir/migrations/$(printf '%05d' "$mid")_m$mid.sql" ;;
    sql) echo "-- touched" >> "$(ls "$dir"/migrations/*/"1.0.${mid}_m$mid.sql")" ;;
    *) sed -i '0,/Ok(())/s//let _ = 1;\n    Ok(())/' "$dir/src/lib.rs" ;;
  esac
  touched=$(time_cmd cargo build --manifest-path "$dir/Cargo.toml")
  printf '| %s | %d | %.1f | %.1f | %.1f |\n' "$crate" "$n" "$clean" "$alone" "$touched"
done
