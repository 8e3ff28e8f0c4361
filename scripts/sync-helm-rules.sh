#!/usr/bin/env bash
# Copies the project's rule files (rules/*.rules.yml) into the helm chart (helm/hpcmon/rules/),
# which must hold real files, not a link: `helm package`, `helm pull` and a chart copied out of
# the repository would otherwise lose them.
#
#   scripts/sync-helm-rules.sh          copy (run after editing rules/)
#   scripts/sync-helm-rules.sh --check  exit 1, naming each file, when the chart's copy differs
#
# scripts/check-helm.sh runs the --check (so the test command fails on a stale copy).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/rules
DST=$ROOT/helm/hpcmon/rules
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
shopt -s nullglob
src=("$SRC"/*.rules.yml)
[ ${#src[@]} -gt 0 ] || { echo "sync-helm-rules: no $SRC/*.rules.yml" >&2; exit 1; }
if [ "$check" = 1 ]; then
  bad=0
  if [ -L "$DST" ] || [ ! -d "$DST" ]; then
    echo "sync-helm-rules: $DST must be a directory of copies (is a link or missing); run scripts/sync-helm-rules.sh" >&2
    exit 1
  fi
  for f in "${src[@]}"; do
    d=$DST/$(basename "$f")
    if [ -L "$d" ] || ! cmp -s "$f" "$d"; then
      echo "sync-helm-rules: helm/hpcmon/rules/$(basename "$f") differs from rules/$(basename "$f")" >&2; bad=1
    fi
  done
  for d in "$DST"/*; do
    [ -e "$SRC/$(basename "$d")" ] || { echo "sync-helm-rules: helm/hpcmon/rules/$(basename "$d") has no rules/ original" >&2; bad=1; }
  done
  if [ "$bad" = 1 ]; then echo "sync-helm-rules: run scripts/sync-helm-rules.sh" >&2; exit 1; fi
  echo "sync-helm-rules: helm/hpcmon/rules matches rules/ (${#src[@]} files)"
  exit 0
fi
if [ -L "$DST" ]; then rm "$DST"; fi
mkdir -p "$DST"
for d in "$DST"/*; do
  [ -e "$SRC/$(basename "$d")" ] || rm -f "$d"
done
for f in "${src[@]}"; do
  cp "$f" "$DST/$(basename "$f")"
done
echo "sync-helm-rules: copied ${#src[@]} rule files into helm/hpcmon/rules"
