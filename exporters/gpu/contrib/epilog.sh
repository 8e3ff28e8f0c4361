#!/bin/bash
# Slurm Epilog part for hpcmon-gpu-exporter's --gpu.job-map-dir: removes every mapping file
# that names this job (by index, UUID or MIG UUID), written by contrib/prolog.sh.
# Always exits 0 (a failing epilog drains the node).
set -u
DEST=${HPCMON_GPU_JOB_MAP_DIR:-/run/gpustat}
[ -n "${SLURM_JOB_ID:-}" ] && [ -d "$DEST" ] || exit 0
for f in "$DEST"/*; do
  [ -f "$f" ] || continue
  read -r jobid _ <"$f" 2>/dev/null || continue
  [ "$jobid" = "$SLURM_JOB_ID" ] && rm -f -- "$f"
done
exit 0
