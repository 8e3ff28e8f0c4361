#!/usr/bin/env bash
# Benchmark of hpcmon-slurm-exporter (numbers only; asserts nothing about timing).
#
#   bench/slurm.sh [JOBS]     (JOBS: extra jobs submitted to the real cluster, default 3000)
#
# 1. synthetic: generated squeue/sinfo outputs for 100k jobs and 10k nodes, parse + aggregate
#    + encode in CPU seconds, and the ratio to a reference pass that only splits the same text
#    into fields (target: < 0.1 s CPU for 100k jobs);
# 2. against the project's real test cluster (scripts/slurm-cluster.sh, its own state dir)
#    loaded with the workload plus JOBS array tasks: the exporter's poll (same squeue + sinfo
#    + parse/aggregate/encode) as a ratio of the bare squeue + sinfo (target: <= 1.2), and
#    slurmctld RPCs per poll interval from sdiag's counters with 1 and 4 concurrent scrapers
#    (target: independent of the number of scrapers).
set -euo pipefail
JOBS="${1:-3000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --quiet -p hpcmon-slurm-exporter
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BENCH="$TARGET_DIR/release/hpcmon-slurm-bench"
EXPORTER="$TARGET_DIR/release/hpcmon-slurm-exporter"

"$BENCH" synthetic 100000 10000

export HPCMON_SLURM_DIR="$ROOT/.run/bench-slurm"
# ports apart from the tests (21817, 21001-21012) and the demo (19817, 19801-19812)
export HPCMON_SLURM_PORT=21917 HPCMON_SLURM_NODE_PORT=21101
trap 'scripts/slurm-cluster.sh stop > /dev/null' EXIT
scripts/slurm-cluster.sh start
eval "$(scripts/slurm-cluster.sh env)"
scripts/slurm-workload.sh --no-down > /dev/null
scripts/slurm-workload.sh bulk "$JOBS"
sleep 2
"$BENCH" cluster "$EXPORTER"
