#!/usr/bin/env bash
# Checks every Grafana dashboard in dashboards/*.json (see scripts/lib/check_dashboards.py):
# valid JSON and datasource conventions, every PromQL expression parses (one promtool run),
# every metric name used exists in exporters/*/testdata/**/*.prom or a recording rule.
# First runs the checker's self-test (tricky expressions, deliberately broken dashboards).
#   scripts/check-dashboards.sh [DASHBOARD.json ...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v promtool >/dev/null || { echo "check-dashboards: promtool missing; run scripts/install-deps.sh prom" >&2; exit 1; }
command -v python3 >/dev/null || { echo "check-dashboards: python3 missing; run scripts/install-deps.sh infra" >&2; exit 1; }
python3 "$ROOT/scripts/lib/check_dashboards.py" --self-test
python3 "$ROOT/scripts/lib/check_dashboards.py" "$@"
