#!/usr/bin/env bash
# Imports hpcmon's dashboards into a Grafana you already run (Grafana 10+, a Prometheus
# datasource: each dashboard asks for it through its ${datasource} variable).
#
#   GRAFANA_URL=https://grafana.example GRAFANA_TOKEN_FILE=~/.grafana-token \
#     scripts/grafana-import.sh [dashboards/*.json]
#
# The token (a service-account token with the Editor role) is read from the file and sent in a
# header file, never on a command line. Dashboards are overwritten by uid (hpcmon-job, ...).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${GRAFANA_URL:?set GRAFANA_URL, e.g. https://grafana.example}"
: "${GRAFANA_TOKEN_FILE:?set GRAFANA_TOKEN_FILE to a file holding an API token}"
[ $# -gt 0 ] || set -- "$ROOT"/dashboards/*.json
hdr=$(mktemp)
trap 'rm -f "$hdr"' EXIT
chmod 600 "$hdr"
printf 'Authorization: Bearer %s\nContent-Type: application/json\n' "$(tr -d '\r\n' < "$GRAFANA_TOKEN_FILE")" > "$hdr"
rc=0
for f in "$@"; do
  body=$(python3 -c 'import json,sys; print(json.dumps({"dashboard": json.load(open(sys.argv[1])), "overwrite": True}))' "$f")
  if out=$(printf '%s' "$body" | curl -sS --max-time 30 -H @"$hdr" -X POST --data-binary @- "${GRAFANA_URL%/}/api/dashboards/db"); then
    echo "$(basename "$f"): $out"
  else
    echo "$(basename "$f"): import failed" >&2; rc=1
  fi
done
exit $rc
