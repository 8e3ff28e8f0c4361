#!/usr/bin/env bash
# Type-checks every Grafana dashboard (dashboards/*.json, or the files given) against Grafana's
# published Dashboard type from the npm package @grafana/schema, with TypeScript's tsc.
# The versions are pinned in scripts/lib/grafana-schema/package.json and package-lock.json;
# `npm ci` installs them into scripts/lib/grafana-schema/node_modules (git-ignored), then
# generate.mjs writes generated/<dashboard>.ts (`export const dashboard: Dashboard = <json>`,
# git-ignored) and `tsc --noEmit` reports every field whose name or type the schema rejects.
#   scripts/check-dashboards-schema.sh [DASHBOARD.json ...]
# Needs node and npm (Debian: nodejs, npm) and the npm registry (or a warm npm cache).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/scripts/lib/grafana-schema
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  # Not in scripts/deps/ on purpose: most machines have node already, and Debian's npm pulls
  # hundreds of packages; install it only where it is missing.
  echo "check-dashboards-schema: installing Debian's nodejs and npm" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends nodejs npm \
    || { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nodejs npm; }
fi
command -v node >/dev/null || { echo "check-dashboards-schema: node missing (Debian: apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null || { echo "check-dashboards-schema: npm missing (Debian: apt-get install npm)" >&2; exit 1; }
if [ $# -gt 0 ]; then
  files=()
  for f in "$@"; do files+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"); done
else
  files=("$ROOT"/dashboards/*.json)
fi
cd "$DIR"
# npm ci only when the lock file changed since the last install (it deletes node_modules first).
stamp=node_modules/.hpcmon-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/tsc ]; then
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$want" > "$stamp"
fi
node generate.mjs generated "${files[@]}"
echo "check-dashboards-schema: @grafana/schema $(node -p "require('./node_modules/@grafana/schema/package.json').version"), typescript $(node_modules/.bin/tsc --version | cut -d' ' -f2), ${#files[@]} dashboard(s)"
if node_modules/.bin/tsc -p tsconfig.json --noEmit --pretty false; then
  echo "check-dashboards-schema: OK"
else
  echo "check-dashboards-schema: FAILED (see the tsc errors above; generated/<name>.ts line numbers map to the dashboard's JSON)" >&2
  exit 1
fi
