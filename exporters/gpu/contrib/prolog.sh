#!/bin/bash
# Slurm Prolog (or one part of a prolog.d/) for hpcmon-gpu-exporter's --gpu.job-map-dir:
# records which job holds which GPU, so a GPU allocated to a job is attributed even while no
# process runs on it. Same layout as Princeton's jobstats (so either exporter can read it):
# one file per allocated GPU, named by its index and, when nvidia-smi is present, its UUID,
# holding "JOBID UID ACCOUNT".
#
# slurm.conf:  Prolog=/etc/slurm/prolog.d/*   (this file, executable, run as root by slurmd)
#              Epilog=/etc/slurm/epilog.d/*   (contrib/epilog.sh)
# exporter:    hpcmon-gpu-exporter --gpu.job-map-dir=/run/gpustat
#
# Slurm's GPU indices must be NVML's (gres.conf AutoDetect=nvml gives that).
# A prolog that fails drains the node, so this script always exits 0.
set -u
DEST=${HPCMON_GPU_JOB_MAP_DIR:-/run/gpustat}
GPUS=${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-${GPU_DEVICE_ORDINAL:-}}}
[ -n "${SLURM_JOB_ID:-}" ] && [ -n "$GPUS" ] || exit 0
mkdir -p -m 755 "$DEST" 2>/dev/null || exit 0
line="$SLURM_JOB_ID ${SLURM_JOB_UID:--} ${SLURM_JOB_ACCOUNT:-}"

write() { # atomically, so the exporter never reads half a file
  local tmp="$DEST/.$1.$$"
  printf '%s\n' "$line" >"$tmp" && mv -f "$tmp" "$DEST/$1"
}

for i in ${GPUS//,/ }; do
  case "$i" in '' | *[!A-Za-z0-9._-]*) continue ;; esac # only plain names, no paths
  write "$i"
  case "$i" in
    MIG-* | GPU-*) ;;
    *)
      if command -v nvidia-smi >/dev/null 2>&1; then
        uuid=$(timeout 10 nvidia-smi --query-gpu=uuid --format=csv,noheader -i "$i" 2>/dev/null)
        case "$uuid" in GPU-*) write "$uuid" ;; esac
      fi
      ;;
  esac
done
exit 0
