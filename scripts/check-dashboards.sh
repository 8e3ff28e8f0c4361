#!/usr/bin/env bash
# Checks every Grafana dashboard in dashboards/*.json (see scripts/lib/check_dashboards.py).
# Static mode (default): valid JSON and datasource conventions, every PromQL expression parses
# (one promtool run), every metric name used exists in exporters/*/testdata/**/*.prom or a
# recording rule. First runs the checker's self-test (tricky expressions, deliberately broken
# dashboards, the live mode against a stub Prometheus).
#   scripts/check-dashboards.sh [DASHBOARD.json ...]
# Live mode: every variable and panel query evaluated on a running Prometheus, failing on
# errors and empty results except the allow-list (default dashboards/live-allowlist.txt):
#   scripts/check-dashboards.sh --live http://127.0.0.1:9090 [--allow-list FILE]
#       [--var jobid=1234 ...] [--range SECONDS] [DASHBOARD.json ...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
live=0
for a in "$@"; do case $a in --live|--live=*) live=1 ;; esac; done
command -v python3 >/dev/null || { echo "check-dashboards: python3 missing; run scripts/install-deps.sh infra" >&2; exit 1; }
if [ "$live" -eq 0 ]; then
  command -v promtool >/dev/null || { echo "check-dashboards: promtool missing; run scripts/install-deps.sh prom" >&2; exit 1; }
fi
python3 "$ROOT/scripts/lib/check_dashboards.py" --self-test
python3 "$ROOT/scripts/lib/check_dashboards.py" "$@"
