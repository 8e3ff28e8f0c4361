#!/usr/bin/env bash
# A mixed job-view workload for the cluster of scripts/slurm-cluster.sh (best in its cgroup mode,
# HPCMON_SLURM_CGROUP=1, so the node exporter's slurm_job collector sees each job): jobs whose
# CPU efficiency and memory peak are known in advance, for the job rollups and dashboards.
#
#   busy   burns every core it holds: HPCMON_BUSY_CPUS (default 1) busy loops, one per CPU
#          (--cpus-per-task), 1 node; CPU efficiency ~1. One CPU by default: the fake nodes
#          share the machine's real cores, and on a 2-core machine a job pinning both would
#          compete with everything else (Prometheus, exporters, builds), so ~1 is not assured.
#   idle   holds 2 CPUs and sleeps; efficiency ~0
#   mem    touches HPCMON_MEM_MIB MiB (default 300) of anonymous memory with --mem=2x that,
#          then sleeps holding it; the cgroup's peak is that much plus the interpreter (~10 MiB)
#   array  a 2-task array (1 CPU each) that sleeps: jobid 123_1, 123_2
#   wide   2 nodes (gpu[1-2], no GPUs asked), 1 CPU each, `srun sleep`: one job in two
#          slurm_<node> cgroup trees of the same machine
#   gpu    1 GPU (--gres=gpu:1, partition gpu), 1 CPU, sleeps: a GPU job for the GPU exporter's
#          job attribution (gpu_slurm_job_info) and the Job dashboard's GPU panels. The demo's
#          GPUs are character devices (nothing runs on them): `scontrol show job -d` gives its
#          GPU index (IDX) for a job-map file (exporters/gpu/contrib/prolog.sh)
#
# Every job is bounded: --time=10 (minutes) and its processes stop after HPCMON_JOB_SECONDS
# (default 480). Prints one line per job, "<name> <jobid>" (the array as its array job id),
# for the caller to parse.
#
# Usage: scripts/slurm-jobs-workload.sh   (SLURM_CONF as printed by slurm-cluster.sh, or
#        HPCMON_SLURM_DIR pointing at its state directory)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=${HPCMON_SLURM_DIR:-$ROOT/.run/slurm}
S=$(cd "$S" && pwd)
export SLURM_CONF=${SLURM_CONF:-$S/etc/slurm.conf}
SECS=${HPCMON_JOB_SECONDS:-480}
CPUS=${HPCMON_BUSY_CPUS:-1}
MEM=${HPCMON_MEM_MIB:-300}
PY=$(command -v python3 || true)
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3   # not a pyenv shim: no extra shell in the job
[ -n "$PY" ] || { echo "ERROR: python3 not found (the memory job needs it)" >&2; exit 1; }
mkdir -p "$S/jobs"; cd "$S/jobs"
# HPCMON_JOBS_PARTITION: where the CPU jobs go (default: the default partition); the GPU job
# always goes to the gpu partition.
PART=()
[ -n "${HPCMON_JOBS_PARTITION:-}" ] && PART=(-p "$HPCMON_JOBS_PARTITION")
sb() { sbatch --parsable -o /dev/null -e /dev/null -t 10 "${PART[@]}" "$@" | cut -d';' -f1; }

# `timeout` bounds each loop; `wait` keeps the batch step (and its cgroup) until they end.
busy=$(sb -J busy -A physics -N 1 -n 1 --cpus-per-task="$CPUS" --mem=200M --wrap \
  "for i in \$(seq $CPUS); do timeout $SECS sh -c 'while :; do :; done' & done; wait")
idle=$(sb -J idle -A physics -N 1 -n 1 --cpus-per-task=2 --mem=100M --wrap "sleep $SECS")
mem=$(sb -J mem -A chemistry -N 1 -n 1 --cpus-per-task=1 --mem=$((MEM * 2))M --wrap \
  "$PY -c 'import time; x = b\"\\x01\" * ($MEM << 20); time.sleep($SECS)'")
array=$(sb -J sweep -A chemistry -N 1 -n 1 --cpus-per-task=1 --mem=100M -a 1-2 --wrap "sleep $SECS")
wide=$(sb -J wide -A physics -p gpu -N 2 --ntasks-per-node=1 --cpus-per-task=1 --mem=100M --wrap \
  "srun sleep $SECS")
gpu=$(sb -J gpujob -A physics -p gpu -N 1 -n 1 --cpus-per-task=1 --mem=100M --gres=gpu:1 --wrap \
  "sleep $SECS")
echo "busy $busy"
echo "idle $idle"
echo "mem $mem"
echo "array $array"
echo "wide $wide"
echo "gpu $gpu"
