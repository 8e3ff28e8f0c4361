# Demo part: hpcmon-slurm-exporter on 127.0.0.1:19341.
# deps: slurm slurmdbd
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
# Uses this machine's own Slurm when one is configured (SLURM_CONF, or /etc/slurm/slurm.conf,
# with a controller answering `scontrol ping`); otherwise starts the project's one-machine
# test cluster (scripts/slurm-cluster.sh, state in $RUN/slurm) with a little workload. The
# cluster runs under a supervisor registered with demo_track, so `scripts/demo.sh stop`
# stops it (the supervisor runs `slurm-cluster.sh stop` on SIGTERM).
own_slurm=""
for conf in "${SLURM_CONF:-}" /etc/slurm/slurm.conf; do
  [ -n "$conf" ] && [ -f "$conf" ] || continue
  if SLURM_CONF=$conf timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then own_slurm=$conf; break; fi
done
if [ -n "$own_slurm" ]; then
  say "  slurm: using this machine's cluster ($own_slurm)"
  export SLURM_CONF=$own_slurm
else
  export HPCMON_SLURM_DIR=$RUN/slurm
  # ports apart from the tests' (21xxx), so the demo and the tests can run side by side
  export HPCMON_SLURM_PORT=19817 HPCMON_SLURM_NODE_PORT=19801
  export SLURM_CONF=$HPCMON_SLURM_DIR/etc/slurm.conf
  # Accounting (slurmdbd + MariaDB) for sacct and hpcmon-jobstats, the cgroup plugins (as root,
  # with cgroup v1) for the node exporter's per-job metrics, and jobstats' epilog.
  export HPCMON_SLURM_DBD=1
  # four more nodes (partition "jobs") for the job-view workload, which the classic workload
  # (draining, down and reserved nodes, a full debug partition) would keep pending
  export HPCMON_SLURM_JOB_NODES=4 HPCMON_JOBS_PARTITION=jobs
  if [ "$(id -u)" = 0 ] && [ -f /sys/fs/cgroup/cpuacct/cgroup.procs ]; then export HPCMON_SLURM_CGROUP=1; fi
  mkdir -p "$HPCMON_SLURM_DIR"
  cat > "$RUN/jobstats-epilog.sh" <<EOF
#!/bin/sh
export HPCMON_JOBSTATS_DEFAULTS=$RUN/jobstats.defaults
exec $ROOT/jobstats/scripts/epilog-slurmctld.sh
EOF
  chmod 755 "$RUN/jobstats-epilog.sh"
  cat > "$RUN/jobstats.defaults" <<EOF
export SLURM_CONF=$SLURM_CONF
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
HPCMON_JOBSTATS=$BIN/hpcmon-jobstats
HPCMON_JOBSTATS_ARGS="--prometheus.url=http://127.0.0.1:19090 --store.url=sqlite://$RUN/jobstats.db"
HPCMON_JOBSTATS_DELAY=10
HPCMON_JOBSTATS_LOG=$RUN/jobstats-epilog.log
EOF
  export HPCMON_SLURM_EPILOG_CTLD=$RUN/jobstats-epilog.sh
  rm -f "$HPCMON_SLURM_DIR/run/demo-ready"
  mkdir -p "$HPCMON_SLURM_DIR/run"
  demo_spawn slurm-cluster bash -c '
    trap "\"$ROOT/scripts/slurm-cluster.sh\" stop; exit 0" TERM INT
    "$ROOT/scripts/slurm-cluster.sh" start || exit 1
    "$ROOT/scripts/slurm-workload.sh" || true
    "$ROOT/scripts/slurm-jobs-workload.sh" > "$HPCMON_SLURM_DIR/run/job-view-jobs.txt" || true
    touch "$HPCMON_SLURM_DIR/run/demo-ready"
    while :; do sleep 5 & wait $!; done'
  for _ in $(seq 600); do
    [ -e "$HPCMON_SLURM_DIR/run/demo-ready" ] && break
    kill -0 "$DEMO_PID" 2>/dev/null || { say "  slurm: the demo cluster did not start; see $RUN/slurm-cluster.log" >&2; return 1; }
    sleep 0.1
  done
  [ -e "$HPCMON_SLURM_DIR/run/demo-ready" ] || { say "  slurm: cluster start timed out; see $RUN/slurm-cluster.log" >&2; return 1; }
  say "  slurm: started the demo cluster (SLURM_CONF=$SLURM_CONF)"
fi
demo_spawn slurm-exporter "$BIN/hpcmon-slurm-exporter" \
  --web.listen-address=127.0.0.1:19341 \
  --slurm.poll-interval=10s \
  --slurm.sshare-interval=1m
demo_scrape slurm 127.0.0.1:19341
demo_url "slurm exporter" "http://127.0.0.1:19341/metrics"
demo_wait_http http://127.0.0.1:19341/-/ready slurm-exporter 30
