# Demo part: hpcmon-slurm-exporter on 127.0.0.1:19341.
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
  rm -f "$HPCMON_SLURM_DIR/run/demo-ready"
  mkdir -p "$HPCMON_SLURM_DIR/run"
  demo_spawn slurm-cluster bash -c '
    trap "\"$ROOT/scripts/slurm-cluster.sh\" stop; exit 0" TERM INT
    "$ROOT/scripts/slurm-cluster.sh" start || exit 1
    "$ROOT/scripts/slurm-workload.sh" || true
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
