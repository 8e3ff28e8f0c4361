#!/usr/bin/env bash
# Benchmark hpcmon-node-exporter against Debian's prometheus-node-exporter.
#
#   bench/node.sh [N]      (N scrapes of each exporter, interleaved; default 200)
#
# Builds the release binary, compiles bench/node.rs (std only) with rustc, and runs it on
# the collectors node_exporter enables by default (both exporters with the same
# --collector.NAME list; BENCH_COLLECTORS="a b" picks others): per-scrape CPU time (from
# /proc/PID/stat and the process CPU clock), wall time, peak RSS and the ratios ours/theirs
# next to the targets (CPU <= 0.25x, RSS <= 0.5x), sample counts of the shared families,
# per-collector durations and CPU, and the floor (reading the same /proc and /sys files with
# nothing else). BENCH_BEFORE=/path/to/an/older/hpcmon-node-exporter adds that binary as a
# third process in the same interleaved loop (before/after on the same run).
# BENCH_KEEP_UNEQUAL=1 keeps collectors that succeed on one side only in the set.
# Prints numbers only; it asserts nothing about timing.
set -euo pipefail
N="${1:-200}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
THEIRS="$(command -v prometheus-node-exporter || true)"
if [[ -z "$THEIRS" ]]; then
  echo "prometheus-node-exporter is missing: scripts/install-deps.sh prom" >&2
  exit 1
fi
command -v strace >/dev/null || echo "note: strace is missing (scripts/install-deps.sh bench); the floor is skipped" >&2
cargo build --release --quiet -p hpcmon-node-exporter
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$TARGET_DIR/bench"
rustc --edition 2021 -O -o "$TARGET_DIR/bench/node-bench" bench/node.rs
exec "$TARGET_DIR/bench/node-bench" "$N" "$TARGET_DIR/release/hpcmon-node-exporter" "$THEIRS" "${BENCH_BEFORE:-}"
