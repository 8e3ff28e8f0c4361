# Demo part: VictoriaMetrics as the long-term store behind Prometheus, with DEMO_LTS=victoria
# (off by default). Debian's single-node victoria-metrics on 127.0.0.1:19428; Prometheus
# remote-writes every sample to it, and its Prometheus-compatible query API serves the same
# dashboards and `hpcmon-jobstats --prometheus.url=http://127.0.0.1:19428` (packaging/README.md
# has the sizing note: when to move to sharding and the cluster version).
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
case "${DEMO_LTS:-}" in
  "") echo "DEMO_LTS is unset: no long-term store (DEMO_LTS=victoria runs VictoriaMetrics)"; return 0 ;;
  victoria) ;;
  *) echo "DEMO_LTS=$DEMO_LTS: unknown (the one long-term store offered is victoria)" >&2; return 1 ;;
esac
"$ROOT/scripts/install-deps.sh" vm
VM_PORT=19428
mkdir -p "$RUN/victoria-data"
demo_spawn victoria-metrics victoria-metrics \
  -httpListenAddr=127.0.0.1:$VM_PORT -storageDataPath="$RUN/victoria-data" -retentionPeriod=30d
demo_wait_http "http://127.0.0.1:$VM_PORT/health" victoria-metrics 30
demo_remote_write "http://127.0.0.1:$VM_PORT/api/v1/write"
demo_scrape victoria-metrics "127.0.0.1:$VM_PORT"
demo_url "VictoriaMetrics (query API)" "http://127.0.0.1:$VM_PORT/api/v1/query?query=up"
