#!/usr/bin/env bash
# Puts the cluster of scripts/slurm-cluster.sh into a varied state: running jobs in two
# accounts, pending jobs for Resources, Priority, Dependency and held (JobHeldUser), an array,
# GPU jobs (one running with 2 GPUs, one with 1, one pending), a job using licenses, a
# reservation, a draining node (n4) and a down node (n3, slurmd stopped and marked down).
#
# Usage: scripts/slurm-workload.sh [--no-down]   (SLURM_CONF as printed by slurm-cluster.sh)
#        scripts/slurm-workload.sh bulk N        submit N more small pending/running jobs
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=${HPCMON_SLURM_DIR:-$ROOT/.run/slurm}
S=$(cd "$S" && pwd)
export SLURM_CONF=${SLURM_CONF:-$S/etc/slurm.conf}
cd "$S/jobs"
sb() { sbatch --parsable -o /dev/null -e /dev/null "$@"; }

if [ "${1:-}" = bulk ]; then
  # Many small array jobs: each array element is a job record in squeue -r.
  n=${2:-1000}; per=1000
  while [ "$n" -gt 0 ]; do
    k=$(( n < per ? n : per ))
    sb -J bulk -A bulk --mem=10 -t 5 -a "1-$k" --wrap 'sleep 600' > /dev/null
    n=$((n - k))
  done
  exit 0
fi

if [ "${1:-}" != --no-down ]; then
  # A down node: its slurmd is stopped, then the admin marks it down.
  if [ -f "$S/run/slurmd-n3.fg.pid" ]; then kill "$(cat "$S/run/slurmd-n3.fg.pid")" 2>/dev/null || true; fi
  scontrol update nodename=n3 state=down reason="hpcmon: slurmd stopped"
fi
# A maintenance reservation on n1 (the node shows maint+reserved).
scontrol create reservation reservationname=maint starttime=now duration=120 nodes=n1 users=root flags=maint > /dev/null
sb -J quick -A physics --wrap 'true' > /dev/null
sb -J fails -A physics --wrap 'exit 3' > /dev/null
for i in 1 2 3 4; do sb -J cpu$i -A physics --mem=200 --wrap 'sleep 600' > /dev/null; done
for i in 5 6; do sb -J cpu$i -A chemistry --mem=300 --wrap 'sleep 600' > /dev/null; done
sb -J wide -A chemistry -N 3 --wrap 'sleep 600' > /dev/null                      # Resources
sb -J lic -A physics -L matlab:2 --mem=100 --wrap 'sleep 600' > /dev/null
sb -J gpu-train -A ml -p gpu --gres=gpu:2 -n 2 --mem=500 --wrap 'sleep 600' > /dev/null
sb -J gpu-small -A ml -p gpu --gres=gpu:a100:1 --mem=500 --wrap 'sleep 600' > /dev/null
sb -J gpu-wait -A ml -p gpu --gres=gpu:2 --wrap 'sleep 30' > /dev/null            # Resources
first=$(sb -J held -A physics -H --wrap 'sleep 10')                                # JobHeldUser
sb -J dep -A physics --dependency=afterok:"$first" --wrap 'true' > /dev/null       # Dependency
sb -J arr -A chemistry -a 1-6%2 --mem=100 --wrap 'sleep 600' > /dev/null           # Priority / JobArrayTaskLimit
sleep 3
scontrol update nodename=n4 state=drain reason="hpcmon: maintenance test"
sleep 1
squeue -h -o '%T %r' | sort | uniq -c
sinfo -N -h -o '%N %T'
