# Demo part: hpcmon-node-exporter on 127.0.0.1:19100 with a textfile directory and the
# slurm_job collector (per-job CPU/memory from the demo cluster's cgroups).
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
mkdir -p "$RUN/node-textfile"
cat > "$RUN/node-textfile/demo.prom" <<'PROM'
# HELP hpcmon_demo_info Written by scripts/demo.d/10-node.sh to show the textfile collector.
# TYPE hpcmon_demo_info gauge
hpcmon_demo_info{part="node"} 1
PROM
demo_spawn node-exporter "$BIN/hpcmon-node-exporter" \
  --web.listen-address=127.0.0.1:19100 \
  --collector.textfile.directory="$RUN/node-textfile" \
  --collector.slurm_job
demo_scrape node 127.0.0.1:19100
demo_url "node exporter" "http://127.0.0.1:19100/metrics"
demo_wait_http http://127.0.0.1:19100/-/ready node-exporter 20
