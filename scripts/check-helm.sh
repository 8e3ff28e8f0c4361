#!/usr/bin/env bash
# Checks the helm chart helm/hpcmon without the helm binary:
#
#   scripts/check-helm.sh [KUBE_VERSION]      (default 1.30.0)
#
# 1. creates (once) a Python venv under .cache/helm-venv with pinned helm-python-sdk (the Helm
#    v4 Go SDK through ctypes) and kubernetes-validate (needs python3-venv: scripts/install-deps.sh helm);
# 2. runs scripts/lib/check_helm.py in it: no links in the chart and its rules/ copy in sync
#    (scripts/sync-helm-rules.sh --check); `helm lint --strict` for that Kubernetes version;
#    the schema rejects bad values and accepts `global` (also rendered as a subchart); value
#    sets rendered and validated against the Kubernetes OpenAPI schemas (strict) with the
#    invariants of every pod; the rendered rules checked by promtool and the project's rule
#    unit tests run on them with the job labels the chart's ServiceMonitors produce; the
#    thresholds from values (see that file's docstring).
# Needs promtool (scripts/install-deps.sh prom). Rendered manifests are left in
# .cache/helm-rendered/ for reading.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_VERSION=${1:-1.30.0}
VENV="$ROOT/.cache/helm-venv"
OUT="$ROOT/.cache/helm-rendered"
# Every package pinned (the resolved set of the three we ask for).
REQUIREMENTS="helm-python-sdk==0.2.2
kubernetes-validate==1.37.0
PyYAML==6.0.2
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
referencing==0.37.0
rpds-py==2026.9.1
attrs==26.1.0
importlib_resources==7.1.0
packaging==26.3
typing_extensions==4.16.0"

PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQUIREMENTS" ]; then
  echo "check-helm: creating $VENV"
  rm -rf "$VENV"
  mkdir -p "$ROOT/.cache"
  "$PY" -m venv "$VENV" || {
    echo "check-helm: python3 -m venv failed; install python3-venv (scripts/install-deps.sh helm)" >&2
    exit 1
  }
  printf '%s\n' "$REQUIREMENTS" > "$VENV/requirements.txt"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$VENV/requirements.txt"
  printf '%s' "$REQUIREMENTS" > "$VENV/.requirements"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
exec "$VENV/bin/python" "$ROOT/scripts/lib/check_helm.py" "$ROOT/helm/hpcmon" "$OUT" "$KUBE_VERSION"
