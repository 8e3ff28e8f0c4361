# Demo part: hpcmon-jobstats serve on 127.0.0.1:19782 (job reports for the demo cluster's jobs),
# plus the job dashboards and a job report to try.
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
# The demo listens on loopback only, so every caller may see every job
# (--serve.allow-all-users); see jobstats/README.md for the trust model of a real deployment.
export SLURM_CONF=${SLURM_CONF:-$RUN/slurm/etc/slurm.conf}
demo_spawn jobstats "$BIN/hpcmon-jobstats" \
  --prometheus.url=http://127.0.0.1:19090 \
  --store.url="sqlite://$RUN/jobstats.db" \
  serve --web.listen-address=127.0.0.1:19782 --serve.allow-all-users
demo_scrape jobstats 127.0.0.1:19782
demo_wait_http http://127.0.0.1:19782/-/healthy jobstats 20
busy=$(awk '$1=="busy"{print $2}' "$RUN/slurm/run/job-view-jobs.txt" 2>/dev/null || true)
demo_url "job report page (jobstats)" "http://127.0.0.1:19782/jobs/${busy:-JOBID}"
demo_url "job report on the command line" "SLURM_CONF=$SLURM_CONF $BIN/hpcmon-jobstats --prometheus.url=http://127.0.0.1:19090 ${busy:-JOBID}"
for d in job user timeline overview; do
  demo_url "dashboard $d (Grafana JSON)" "file://$ROOT/dashboards/$d.json"
done
demo_url "import into your Grafana" "GRAFANA_URL=http://grafana:3000 GRAFANA_TOKEN_FILE=~/.grafana-token $ROOT/scripts/grafana-import.sh dashboards/*.json"
