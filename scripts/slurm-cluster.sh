#!/usr/bin/env bash
# A real single-machine Slurm cluster (Debian slurm-wlm 22.05) for hpcmon's tests and demo,
# loopback only: munge, slurmctld and six `slurmd -N` fake nodes, n[1-4] (partition debug) and
# gpu[1-2] (partition gpu, two fake GPUs each through File= character devices).
#
# Usage: scripts/slurm-cluster.sh start|stop|status|env
# Environment:
#   HPCMON_SLURM_DIR   state directory (config, logs, spool, state); default $ROOT/.run/slurm
#   HPCMON_SLURM_PORT  slurmctld port (default 21817, in the slurm block 21000-21999 of the
#                      project's test ports)
#   HPCMON_SLURM_NODE_PORT  first slurmd port (default 21001): n1-n4 use it and the next
#                      three, gpu1-gpu2 it+10 and it+11. The demo uses 19817/19801 so that it
#                      can run next to the tests.
#   KEEP_MUNGE=1       on stop, leave a munged this script started running
#   HPCMON_SLURM_DBD=1 accounting: MariaDB (unix socket only, skip-networking) and slurmdbd
#                      on 127.0.0.1:<slurmctld port + 2>, with the cluster, the accounts
#                      physics, chemistry, ml, bulk and the caller as their user registered,
#                      so sacct, sacctmgr (AdminComment), sshare and job accounting work.
#                      Needs scripts/install-deps.sh slurmdbd.
#   HPCMON_SLURM_EPILOG_CTLD=PATH  EpilogSlurmctld (run by slurmctld at each job's end)
#   HPCMON_SLURM_JOB_NODES=N  N (0-9) more nodes j1..jN (2 CPUs each, ports node port + 20...) in
#                      a partition "jobs", kept free of scripts/slurm-workload.sh's load (the
#                      demo runs the job-view workload there)
#   HPCMON_SLURM_CGROUP=1  cgroup mode: proctrack/cgroup, task/cgroup,task/affinity and
#                      jobacct_gather/cgroup with a cgroup.conf (ConstrainCores, ConstrainRAMSpace),
#                      so each job gets a cpuset and a memory limit (CR_Core_Memory, DefMemPerCPU)
#                      and the node exporter's slurm_job collector sees it. Needs cgroup v1
#                      controllers under /sys/fs/cgroup (cpuset, cpuacct, memory, freezer) and root.
#                      Several slurmd on one machine name their trees slurm_<node>:
#                      /sys/fs/cgroup/<controller>/slurm_n1/uid_0/job_7/step_batch/...
#                      Only one cgroup-mode cluster per machine: the demo's and the tests' would
#                      share those names. Default (0): proctrack/linuxproc, no cgroups.
# Clients: export SLURM_CONF=$HPCMON_SLURM_DIR/etc/slurm.conf  (or: eval "$(slurm-cluster.sh env)")
#
# Only one such cluster can run per machine (fixed ports): tests serialise on a lock file.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S=${HPCMON_SLURM_DIR:-$ROOT/.run/slurm}
mkdir -p "$S"; S=$(cd "$S" && pwd)
ETC=$S/etc; RUN=$S/run; LOG=$S/log
CTLD_PORT=${HPCMON_SLURM_PORT:-21817}
NODE_PORT=${HPCMON_SLURM_NODE_PORT:-21001}
CGROUP=${HPCMON_SLURM_CGROUP:-0}
DBD=${HPCMON_SLURM_DBD:-0}
DBD_PORT=$((CTLD_PORT + 2))
CGROUP_ROOT=/sys/fs/cgroup
export SLURM_CONF=$ETC/slurm.conf
HOST=$(hostname -s)
NODES="n1 n2 n3 n4 gpu1 gpu2"
JOB_NODES=${HPCMON_SLURM_JOB_NODES:-0}
case "$JOB_NODES" in [0-9]) ;; *) echo "ERROR: HPCMON_SLURM_JOB_NODES must be 0-9" >&2; exit 2 ;; esac
for i in $(seq "$JOB_NODES"); do NODES="$NODES j$i"; done

need() { command -v "$1" > /dev/null || { echo "ERROR: $1 not found; run scripts/install-deps.sh slurm" >&2; exit 1; }; }
waitfor() { # seconds cmd...
  local t=$1; shift; local i=0
  until "$@" > /dev/null 2>&1; do sleep 0.1; i=$((i+1)); [ $i -ge $((t*10)) ] && { echo "timeout waiting for: $*" >&2; return 1; }; done; return 0; }
stop_pidfiles() { # SIGTERM, wait up to 10 s, then SIGKILL
  local f p pids=() files=()
  for f in "$@"; do [ -f "$f" ] || continue; p=$(cat "$f"); files+=("$f"); kill "$p" 2>/dev/null && pids+=("$p"); done
  for _ in $(seq 100); do
    local alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1; done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -f "${files[@]}"; return 0; }

plugins() {
  if [ "$CGROUP" = 1 ]; then
    printf '%s\n' ProctrackType=proctrack/cgroup TaskPlugin=task/cgroup,task/affinity \
      JobAcctGatherType=jobacct_gather/cgroup JobAcctGatherFrequency=5
  else
    printf '%s\n' ProctrackType=proctrack/linuxproc TaskPlugin=task/none JobAcctGatherType=jobacct_gather/none
  fi
}

check_cgroup() { # the v1 controllers the cgroup plugins use, each mounted on its own
  local c
  [ "$(id -u)" = 0 ] || { echo "ERROR: HPCMON_SLURM_CGROUP=1 needs root (slurmd creates cgroups)" >&2; return 1; }
  for c in cpuset cpuacct memory freezer; do
    [ -f "$CGROUP_ROOT/$c/cgroup.procs" ] || {
      echo "ERROR: HPCMON_SLURM_CGROUP=1: no cgroup v1 '$c' controller at $CGROUP_ROOT/$c" >&2; return 1; }
  done
}

remove_job_cgroups() { # empty job cgroups a killed slurmstepd left behind (deepest first)
  local c n d
  for c in cpuset cpuacct memory freezer devices cpu blkio pids; do
    for n in $NODES; do
      d=$CGROUP_ROOT/$c/slurm_$n
      [ -d "$d" ] || continue
      find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
}

job_nodes() {
  [ "$JOB_NODES" -gt 0 ] || return 0
  echo "NodeName=j[1-$JOB_NODES] NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((NODE_PORT + 20))-$((NODE_PORT + 19 + JOB_NODES)) CPUs=2 RealMemory=2000 Feature=cpu State=UNKNOWN"
  echo "PartitionName=jobs Nodes=j[1-$JOB_NODES] MaxTime=INFINITE State=UP"
}

accounting() {
  if [ "$DBD" = 1 ]; then
    printf '%s\n' AccountingStorageType=accounting_storage/slurmdbd AccountingStorageHost=localhost \
      "AccountingStoragePort=$DBD_PORT" AccountingStorageTRES=gres/gpu
  else
    echo AccountingStorageType=accounting_storage/none
  fi
}

render_dbd() {
  cat > "$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
# undocumented for slurmdbd in 22.05 but honoured: bind 127.0.0.1 instead of 0.0.0.0
CommunicationParameters=NoInAddrAny
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$ETC/slurmdbd.conf"
  cat > "$ETC/my.cnf" <<EOF
[mysqld]
datadir=$S/mysql
socket=$RUN/mysqld.sock
pid-file=$RUN/mysqld.pid
skip-networking
user=root
innodb_buffer_pool_size=64M
innodb_lock_wait_timeout=900
log-error=$LOG/mysqld.err
[client]
socket=$RUN/mysqld.sock
EOF
}

start_dbd() { # MariaDB on a unix socket only, then slurmdbd; registers cluster and accounts
  need mariadbd; need slurmdbd; need sacctmgr
  mariadb-install-db --defaults-file="$ETC/my.cnf" --auth-root-authentication-method=socket > "$LOG/mysql-install.log" 2>&1
  mariadbd --defaults-file="$ETC/my.cnf" > /dev/null 2>&1 & echo $! > "$RUN/mariadbd.fg.pid"
  waitfor 30 mariadb --defaults-file="$ETC/my.cnf" -e 'select 1'
  MYSQL_UNIX_PORT=$RUN/mysqld.sock slurmdbd -D > "$LOG/slurmdbd.stdout" 2>&1 & echo $! > "$RUN/slurmdbd.fg.pid"
  waitfor 30 sacctmgr -n list cluster
  local me; me=$(id -un)
  sacctmgr -i add cluster hpcmon > /dev/null
  sacctmgr -i add account physics,chemistry,ml,bulk cluster=hpcmon > /dev/null
  sacctmgr -i add user "$me" account=physics,chemistry,ml,bulk cluster=hpcmon > /dev/null
}

render() {
  mkdir -p "$ETC" "$RUN" "$LOG" "$S/state" "$S/jobs" "$S/fakedev"
  cat > "$ETC/slurm.conf" <<EOF
# generated by hpcmon scripts/slurm-cluster.sh
ClusterName=hpcmon
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MailProg=/bin/true
# bind slurmctld/slurmd/srun to the resolved address (127.0.0.1), never 0.0.0.0
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SwitchType=switch/none
MpiDefault=none
$(plugins)
$(accounting)
${HPCMON_SLURM_EPILOG_CTLD:+EpilogSlurmctld=$HPCMON_SLURM_EPILOG_CTLD}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
PriorityType=priority/multifactor
ReturnToService=2
JobCompType=jobcomp/none
MinJobAge=300
MaxJobCount=100000
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
GresTypes=gpu
Licenses=matlab:4,ansys:2
NodeName=n[1-4] NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$NODE_PORT-$((NODE_PORT + 3)) CPUs=2 RealMemory=2000 Feature=cpu,ib State=UNKNOWN
NodeName=gpu[1-2] NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((NODE_PORT + 10))-$((NODE_PORT + 11)) CPUs=2 RealMemory=2000 Gres=gpu:a100:2 Feature=gpu State=UNKNOWN
PartitionName=debug Nodes=n[1-4] Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=gpu[1-2] MaxTime=60 State=UP
$(job_nodes)
EOF
  # gres/gpu in 22.05 ignores Count-only lines and needs File= character devices: two with
  # /dev/null's numbers (ConstrainDevices is off, nothing is enforced).
  for i in 0 1; do [ -c "$S/fakedev/nvidia$i" ] || { rm -f "$S/fakedev/nvidia$i"; mknod "$S/fakedev/nvidia$i" c 1 3; }; done
  echo "NodeName=gpu[1-2] Name=gpu Type=a100 File=$S/fakedev/nvidia[0-1]" > "$ETC/gres.conf"
  if [ "$DBD" = 1 ]; then render_dbd; fi
  if [ "$CGROUP" = 1 ]; then
    # autodetect picks cgroup/v1 here. ConstrainCores gives each job a cpuset of its cores,
    # ConstrainRAMSpace a memory.limit_in_bytes of its --mem (no swap allowance on top).
    cat > "$ETC/cgroup.conf" <<EOF
CgroupPlugin=autodetect
CgroupMountpoint=$CGROUP_ROOT
ConstrainCores=yes
ConstrainRAMSpace=yes
AllowedRAMSpace=100
ConstrainSwapSpace=no
ConstrainDevices=no
EOF
  else
    rm -f "$ETC/cgroup.conf"
  fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge > /dev/null 2>&1; then return 0; fi
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  install -d -o munge -g munge -m 0755 /run/munge
  # munged outlives the cluster: it must not inherit the caller's descriptors (a test's
  # `flock 9` on the cluster lock would otherwise stay held for as long as munged runs).
  ( for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null
    exec runuser -u munge -- /usr/sbin/munged )
  waitfor 10 sh -c 'munge -n | unmunge'
  cp /run/munge/munged.pid "$RUN/munged.started.pid"
}

kill_orphan_steps() { # slurmstepd (and job processes) of this cluster outlive slurmd
  local p all=() changed=1 c
  for p in $(pgrep -x slurmstepd || true); do
    ls -l "/proc/$p/fd" 2>/dev/null | grep -q " $S/" && all+=("$p"); done
  [ ${#all[@]} -eq 0 ] && return 0
  while [ $changed = 1 ]; do changed=0
    for c in $(ps -eo pid=,ppid= | awk -v L=" ${all[*]} " 'index(L, " "$2" ") && !index(L, " "$1" ") {print $1}'); do all+=("$c"); changed=1; done
  done
  kill "${all[@]}" 2>/dev/null || true; sleep 0.5; kill -9 "${all[@]}" 2>/dev/null || true
}

check_loopback() {
  local bad
  bad=$(ss -Hltnp 2>/dev/null | grep -E 'slurm|mariadb' | awk '{print $4}' | grep -vE '^(127\.[0-9.]+|\[::1\]):' || true)
  if [ -n "$bad" ]; then echo "ERROR: a Slurm daemon listens off loopback: $bad" >&2; return 1; fi
}

case "${1:-}" in
start)
  for b in munge slurmctld slurmd sinfo squeue scontrol; do need $b; done
  case "$(getent ahostsv4 "$HOST" | awk 'NR==1{print $1}')" in 127.*) ;; *)
    echo "ERROR: hostname $HOST does not resolve to 127.x (add it to /etc/hosts); NoInAddrAny would bind a public address" >&2; exit 1;; esac
  if [ -f "$RUN/slurmctld.fg.pid" ] && kill -0 "$(cat "$RUN/slurmctld.fg.pid")" 2>/dev/null; then
    echo "already running; export SLURM_CONF=$SLURM_CONF"; exit 0; fi
  if ss -Hltn "sport = :$CTLD_PORT" 2>/dev/null | grep -q .; then
    echo "ERROR: port $CTLD_PORT is in use (another Slurm test cluster?)" >&2; exit 1; fi
  if [ "$CGROUP" = 1 ]; then check_cgroup; fi
  trap 'echo "start failed; see $LOG; stopping" >&2; "$0" stop' ERR
  rm -rf "$S/state" "$S/spool"   # fresh controller state: old DRAIN reasons survive otherwise
  rm -rf "$S/mysql"             # fresh accounting too (job ids restart at 1)
  render; start_munge
  if [ "$DBD" = 1 ]; then start_dbd; fi
  slurmctld -D > "$LOG/slurmctld.stdout" 2>&1 & echo $! > "$RUN/slurmctld.fg.pid"
  waitfor 30 sh -c 'scontrol ping | grep -q "is UP"'
  for n in $NODES; do
    mkdir -p "$S/spool/$n"
    slurmd -D -N "$n" > "$LOG/slurmd-$n.stdout" 2>&1 & echo $! > "$RUN/slurmd-$n.fg.pid"
  done
  waitfor 60 sh -c "[ \$(sinfo -h -N -o '%N %T' | grep -cE ' (idle|mixed|allocated)\$') -ge $(echo $NODES | wc -w) ]"
  check_loopback
  echo "slurm cluster up; export SLURM_CONF=$SLURM_CONF" ;;
stop)
  if [ -f "$SLURM_CONF" ] && [ -f "$RUN/slurmctld.fg.pid" ] && timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
    timeout 10 scancel -u "$(id -un)" 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(timeout 5 squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  shopt -s nullglob
  stop_pidfiles "$RUN"/slurmd-*.fg.pid "$RUN/slurmctld.fg.pid"
  stop_pidfiles "$RUN/slurmdbd.fg.pid"
  stop_pidfiles "$RUN/mariadbd.fg.pid"
  kill_orphan_steps
  if [ -f "$ETC/cgroup.conf" ]; then remove_job_cgroups; fi
  if [ "${KEEP_MUNGE:-0}" != 1 ] && [ -f "$RUN/munged.started.pid" ]; then
    if [ "$(cat "$RUN/munged.started.pid")" = "$(cat /run/munge/munged.pid 2>/dev/null)" ]; then
      stop_pidfiles "$RUN/munged.started.pid"; else rm -f "$RUN/munged.started.pid"; fi
  fi
  echo "slurm cluster stopped" ;;
status)
  st=0
  for f in "$RUN"/*.fg.pid; do [ -e "$f" ] || continue
    if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$(basename "$f" .fg.pid) running (pid $(cat "$f"))"; else echo "$(basename "$f" .fg.pid) dead"; st=1; fi; done
  [ -e "$RUN/slurmctld.fg.pid" ] || { echo "not running"; st=3; }
  exit $st ;;
env) echo "export SLURM_CONF=$SLURM_CONF" ;;
*) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
