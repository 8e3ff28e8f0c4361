#!/usr/bin/env bash
# Installs the Debian packages that hpcmon's tests and demo need, idempotently.
#
#   scripts/install-deps.sh GROUP...     e.g. prom slurm ipmi postgres chromium
#   scripts/install-deps.sh all
#
# Each group is a file scripts/deps/GROUP.txt with one package per line ('#' comments).
# Packages already installed are skipped; nothing is started (policy-rc.d denies it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
groups=("$@")
if [ ${#groups[@]} -eq 0 ] || [ "${groups[0]}" = all ]; then
  groups=()
  for f in "$here"/deps/*.txt; do groups+=("$(basename "$f" .txt)"); done
fi
want=()
for g in "${groups[@]}"; do
  f="$here/deps/$g.txt"
  [ -f "$f" ] || { echo "install-deps: no package list $f" >&2; exit 2; }
  while read -r pkg _; do
    case "$pkg" in ''|'#'*) continue ;; esac
    want+=("$pkg")
  done < "$f"
done
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Never let a package's postinst start a daemon: our tests start their own on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Several installs may run at once (parallel test setup): wait for the dpkg lock.
lock=(-o DPkg::Lock::Timeout=600)
if ! $SUDO apt-get "${lock[@]}" install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get "${lock[@]}" update
  $SUDO apt-get "${lock[@]}" install -y --no-install-recommends "${missing[@]}"
fi
