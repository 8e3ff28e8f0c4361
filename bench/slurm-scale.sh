#!/usr/bin/env bash
# Scale benchmark of hpcmon-slurm-exporter over HTTP, before and after a change (numbers
# only; asserts nothing about timing).
#
#   bench/slurm-scale.sh [BEFORE_REV] [JOBS USERS NODES]
#
# Generates squeue/sinfo/sshare/sdiag outputs of a cluster with JOBS jobs (default 100000),
# USERS users (3000), USERS/10 accounts and NODES nodes (10000), with independent, skewed
# (Zipf-like) distributions of user, account, partition, state, node count, CPUs and GPUs
# (exporters/slurm/src/bin/bench/scale.rs), and serves them through --slurm.bin-dir wrappers
# to, in the same run on the same data:
#   before        the exporter built from BEFORE_REV (default 1b94c57: the last commit before
#                 the issue-13 hardening of the kit and the Slurm exporter), in a temporary
#                 git worktree removed at the end;
#   after         the working tree's exporter with its defaults;
#   after-no-caps the same with the per-user/per-account caps off (--slurm.top-users=0
#                 --slurm.top-accounts=0);
#   after-lean    the defaults plus --slurm.node-families=state,flags,reason.
# For each: series, bytes of a scrape without and with Accept-Encoding: gzip, the client's
# scrape time (median of 5), RSS and peak RSS; then each run's ratios to "before".
set -euo pipefail
BEFORE="${1:-1b94c57}"
JOBS="${2:-100000}" USERS="${3:-3000}" NODES="${4:-10000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

cargo build --release --quiet -p hpcmon-slurm-exporter
BENCH="$TARGET_DIR/release/hpcmon-slurm-bench"
AFTER="$TARGET_DIR/release/hpcmon-slurm-exporter"

WT="$(mktemp -d -t hpcmon-slurm-before-XXXXXX)"
cleanup() { git -C "$ROOT" worktree remove --force "$WT" 2>/dev/null || rm -rf "$WT"; }
trap cleanup EXIT
git -C "$ROOT" worktree add --detach --quiet "$WT" "$BEFORE"
# Its own target folder (kept between runs: the next build is incremental).
CARGO_TARGET_DIR="$TARGET_DIR/bench-before" \
  cargo build --release --quiet --manifest-path "$WT/Cargo.toml" -p hpcmon-slurm-exporter
BEFORE_BIN="$TARGET_DIR/bench-before/release/hpcmon-slurm-exporter"
echo "before: $(git -C "$ROOT" log -1 --format='%h %s' "$BEFORE" | cut -c1-100)"
echo "after:  working tree at $(git -C "$ROOT" log -1 --format='%h' HEAD)$(git -C "$ROOT" diff --quiet -- exporters || echo ' + local changes')"

"$BENCH" scale "$JOBS" "$USERS" "$NODES" \
  "before=$BEFORE_BIN" \
  "after=$AFTER" \
  "after-no-caps=$AFTER" --slurm.top-users=0 --slurm.top-accounts=0 \
  "after-lean=$AFTER" --slurm.node-families=state,flags,reason
