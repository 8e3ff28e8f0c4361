#!/usr/bin/env bash
# The packages, built and used as an admin would (packaging/README.md):
#
#   scripts/test.d/60-packages.sh
#
# 1. builds the .deb and .rpm of every binary with scripts/package.sh, from the debug binaries
#    that scripts/test.sh's build step made (`--profile dev --no-build --fast`: a release
#    build of all six takes ~8 minutes on 2 cores, past this step's budget; what the packages
#    hold and do does not depend on the profile, and `scripts/package.sh` alone builds release);
# 2. inspects each .rpm with `rpm -qp` (files, config files, scriptlets, the glibc it needs)
#    and each .deb with `dpkg-deb` (files, conffiles, maintainer scripts);
# 3. installs the seven .debs with `dpkg -i` (after removing any hpcmon-* system user, so the
#    postinst must create them), and checks files, modes, users and conffiles;
# 4. `systemd-analyze verify` on every unit (no warning allowed) and `systemd-analyze security
#    --offline=true` (exposure printed, each must rate "OK" or better);
# 5. runs every service the way its unit would (scripts/lib/run-as-unit.sh: its user, flags
#    file, no capabilities, no new privileges, read-only system with its own directories
#    writable, private /tmp) with its /etc/default file edited to listen on 127.0.0.1, scrapes
#    /metrics (and checks /-/ready where it means something here), checks the process' user,
#    capability sets and NoNewPrivs, and prints its peak RSS;
# 6. `dpkg -r` (binaries gone, conffiles kept), then `dpkg -P` (conffiles, state and cache
#    directories gone, nothing of the packages left).
# HPCMON_PACKAGES=DIR tests the packages already in DIR (e.g. release ones from
# scripts/package.sh) instead of building them.
# Needs root and `scripts/install-deps.sh package prom` (rpm, binutils, systemd's tools, curl).
# Everything it installs is purged on exit, also on failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PKGS=(hpcmon-node-exporter hpcmon-gpu-exporter hpcmon-ipmi-exporter hpcmon-slurm-exporter
  hpcmon-alert-bridge hpcmon-jobstats hpcmon-actions)
OUT=${HPCMON_PACKAGES:-$ROOT/target/packages}
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "OK   $*"; }
[ "$(id -u)" = 0 ] || { echo "60-packages: needs root (dpkg -i)" >&2; exit 1; }
for t in rpm dpkg-deb systemd-analyze setpriv unshare curl objdump strip; do
  command -v "$t" >/dev/null || { echo "60-packages: $t missing; run scripts/install-deps.sh package" >&2; exit 1; }
done

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  local installed=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv "not-installed" && installed+=("$p")
  done
  if [ ${#installed[@]} -gt 0 ]; then dpkg -P "${installed[@]}" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# ---- 1. build ----
t0=$SECONDS
if [ -z "${HPCMON_PACKAGES:-}" ]; then
  rm -rf "$OUT"
  cargo build --quiet --workspace --bins   # what scripts/test.sh's build step did: up to date
  scripts/package.sh --profile dev --no-build --fast --out "$OUT"
  echo "60-packages: packages built in $((SECONDS - t0)) s"
fi
VERSION=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)

# ---- 2. inspect ----
for p in "${PKGS[@]}"; do
  rpmf=$(ls "$OUT/$p-$VERSION"-1.*.rpm 2>/dev/null | head -1)
  debf=$(ls "$OUT/${p}_$VERSION"-1_*.deb 2>/dev/null | head -1)
  [ -f "$rpmf" ] || { fail "$p: no .rpm in $OUT"; continue; }
  [ -f "$debf" ] || { fail "$p: no .deb in $OUT"; continue; }
  files=$(rpm -qlp "$rpmf")
  for f in "/usr/bin/$p" "/usr/lib/systemd/system/$p.service" "/etc/sysconfig/$p" \
    "/usr/lib/sysusers.d/$p.conf" "/usr/share/doc/$p/README.md"; do
    grep -qx "$f" <<< "$files" || fail "$p.rpm lacks $f"
  done
  grep -q "^/etc/default" <<< "$files" && fail "$p.rpm ships /etc/default (RHEL reads /etc/sysconfig)"
  conf=$(rpm -qp --configfiles "$rpmf")
  grep -qx "/etc/sysconfig/$p" <<< "$conf" || fail "$p.rpm: /etc/sysconfig/$p is not a config file"
  [ "$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" | awk -v f="/etc/sysconfig/$p" '$2 == f {print $1}')" = cn ] \
    || fail "$p.rpm: /etc/sysconfig/$p is not %config(noreplace)"
  scripts=$(rpm -qp --scripts "$rpmf")
  grep -q "useradd -r -g $p" <<< "$scripts" || fail "$p.rpm: no useradd in its scriptlets"
  grep -q "systemctl --no-reload disable --now $p.service" <<< "$scripts" || fail "$p.rpm: preun does not stop the unit"
  glibc=$(rpm -qp --requires "$rpmf" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)
  [ -n "$glibc" ] || fail "$p.rpm: no libc.so.6(GLIBC_x) requirement (auto-req)"
  debfiles=$(dpkg-deb -c "$debf" | awk '{print $6}' | sed 's#^\./#/#')
  for f in "/usr/bin/$p" "/lib/systemd/system/$p.service" "/etc/default/$p" "/usr/lib/sysusers.d/$p.conf"; do
    grep -qx "$f" <<< "$debfiles" || fail "$p.deb lacks $f"
  done
  ctl=$(mktemp -d); dpkg-deb -e "$debf" "$ctl"
  grep -qx "/etc/default/$p" "$ctl/conffiles" || fail "$p.deb: /etc/default/$p is not a conffile"
  for s in postinst prerm postrm; do [ -x "$ctl/$s" ] || fail "$p.deb: no $s"; done
  depends=$(dpkg-deb -f "$debf" Depends)
  rm -rf "$ctl"
  ok "$p: $(basename "$rpmf") $(stat -c %s "$rpmf") B, $(rpm -qlp "$rpmf" | wc -l) files, needs $glibc; $(basename "$debf") $(stat -c %s "$debf") B, Depends: $depends"
done
grep -qx /etc/hpcmon-ipmi-exporter/ipmi.yml <<< "$(rpm -qp --configfiles "$OUT"/hpcmon-ipmi-exporter-*.rpm)" \
  || fail "hpcmon-ipmi-exporter.rpm: ipmi.yml is not a config file"
grep -qx /etc/hpcmon-actions/actions.yml <<< "$(rpm -qp --configfiles "$OUT"/hpcmon-actions-*.rpm)" \
  || fail "hpcmon-actions.rpm: actions.yml is not a config file"

# ---- 3. install ----
cleanup
for p in "${PKGS[@]}"; do
  if getent passwd "$p" >/dev/null; then userdel "$p" 2>/dev/null || true; fi
  if getent group "$p" >/dev/null; then groupdel "$p" 2>/dev/null || true; fi
done
dpkg -i "$OUT"/*.deb
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" | grep -qx "install ok installed" || fail "$p not installed"
  pw=$(getent passwd "$p") || { fail "postinst did not create user $p"; continue; }
  IFS=: read -r _ _ uid _ _ home shell <<< "$pw"
  [ "$uid" -lt 1000 ] || fail "user $p is not a system user (uid $uid)"
  case "$shell" in */nologin|/bin/false) ;; *) fail "user $p has a login shell $shell" ;; esac
  [ -x "/usr/bin/$p" ] || fail "/usr/bin/$p missing"
  [ "$(stat -c %U "/usr/bin/$p")" = root ] || fail "/usr/bin/$p not owned by root"
  dpkg-query -W -f='${Conffiles}\n' "$p" | grep -q "/etc/default/$p " || fail "$p: /etc/default/$p not registered as a conffile"
  grep -q "ARGS=" "/etc/default/$p" || fail "/etc/default/$p has no ARGS"
done
[ "$(stat -c '%a %U %G' /etc/hpcmon-ipmi-exporter)" = "750 root hpcmon-ipmi-exporter" ] \
  || fail "/etc/hpcmon-ipmi-exporter is $(stat -c '%a %U %G' /etc/hpcmon-ipmi-exporter), want 750 root hpcmon-ipmi-exporter"
[ "$(stat -c '%a' /etc/hpcmon-ipmi-exporter/ipmi.yml)" = 640 ] || fail "ipmi.yml is not 0640"
[ "$(stat -c '%a %U %G' /etc/hpcmon-actions/actions.yml)" = "640 root hpcmon-actions" ] \
  || fail "/etc/hpcmon-actions/actions.yml is $(stat -c '%a %U %G' /etc/hpcmon-actions/actions.yml)"
ok "installed: $(for p in "${PKGS[@]}"; do printf '%s(%s) ' "$p" "$(id -u "$p")"; done)"

# ---- 4. units ----
units=()
for p in "${PKGS[@]}"; do units+=("/lib/systemd/system/$p.service"); done
if v=$(systemd-analyze verify --man=no "${units[@]}" 2>&1) && [ -z "$v" ]; then
  ok "systemd-analyze verify: ${#units[@]} units, no warnings"
else
  fail "systemd-analyze verify: $v"
fi
for u in "${units[@]}"; do
  # Offline security review (systemd 252+): the overall exposure, 0 (best) to 10.
  line=$(systemd-analyze security --offline=true --no-pager "$u" 2>&1 | grep -E "Overall exposure level" || true)
  score=$(sed -E 's/.*: ([0-9.]+) .*/\1/' <<< "$line")
  case "$line" in
    *OK*|*SAFE*|*PERFECT*) ok "$(basename "$u"): $line" ;;
    '') fail "$(basename "$u"): systemd-analyze security gave no rating" ;;
    *) fail "$(basename "$u"): $line (score $score)" ;;
  esac
done
for u in "${units[@]}"; do
  for k in ProtectSystem=strict NoNewPrivileges=yes CapabilityBoundingSet= "User=$(basename "$u" .service)"; do
    grep -qx "$k" "$u" || fail "$(basename "$u") lacks $k"
  done
  # No secret in a unit: only comments may mention one.
  if grep -v '^#' "$u" | grep -niE "password|secret|token|postgres://|Environment=.*(PASS|KEY)"; then
    fail "$(basename "$u") carries a secret"
  fi
done

# ---- 5. run as the unit would ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL: 200 within 60 s
  local i
  for i in $(seq 300); do curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0; sleep 0.2; done
  return 1
}
check_proc() { # PID USER NAME
  local st; st=$(cat "/proc/$1/status")
  [ "$(awk '/^Uid:/{print $2}' <<< "$st")" = "$(id -u "$2")" ] || fail "$3 runs as uid $(awk '/^Uid:/{print $2}' <<< "$st"), not $2"
  for c in CapPrm CapEff CapBnd CapAmb; do
    [ "$(awk -v c="$c:" '$1 == c {print $2}' <<< "$st")" = 0000000000000000 ] || fail "$3 has $c $(awk -v c="$c:" '$1 == c {print $2}' <<< "$st")"
  done
  [ "$(awk '/^NoNewPrivs:/{print $2}' <<< "$st")" = 1 ] || fail "$3 without NoNewPrivs"
  echo "     $3: uid $(id -u "$2") ($2), no capabilities, NoNewPrivs, peak RSS $(awk '/^VmHWM:/{print $2, $3}' <<< "$st")"
}
declare -A metric=(
  [hpcmon-node-exporter]=node_load1 [hpcmon-gpu-exporter]=gpu_nvml_up
  [hpcmon-ipmi-exporter]=ipmi_up [hpcmon-slurm-exporter]=slurm_scrape_collector_success
  [hpcmon-alert-bridge]=alert_bridge_storage_up [hpcmon-jobstats]=hpcmon_jobstats_
  [hpcmon-actions]=hpcmon_actions_)
logs=$(mktemp -d)
for p in "${PKGS[@]}"; do
  port=$(free_port)
  # As an admin would: edit the flags file (a conffile) to listen on loopback.
  sed -i -E "s#--web.listen-address=[^ \"]*#--web.listen-address=127.0.0.1:$port#" "/etc/default/$p"
  grep -q "127.0.0.1:$port" "/etc/default/$p" || { fail "$p: could not set the listen address"; continue; }
  scripts/lib/run-as-unit.sh "/lib/systemd/system/$p.service" > "$logs/$p.log" 2>&1 &
  pid=$!; pids+=("$pid")
  url="http://127.0.0.1:$port/metrics"
  if ! wait_http "http://127.0.0.1:$port/-/healthy"; then
    fail "$p did not answer /-/healthy on 127.0.0.1:$port as its unit would; its output:"
    tail -20 "$logs/$p.log"; continue
  fi
  body=$(curl -fsS --max-time 60 "$url") || { fail "$p: $url failed"; continue; }
  grep -q "^${metric[$p]}" <<< "$body" || fail "$p: no ${metric[$p]} in $url"
  # The service process: the one listening on the port (setpriv and env exec'd into it).
  spid=$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
  if [ -n "$spid" ] && [ "$(readlink "/proc/$spid/exe")" = "/usr/bin/$p" ]; then
    check_proc "$spid" "$p" "$p"
  else
    fail "$p: no /usr/bin/$p process listening on $port"
  fi
  ok "$p serves $url as user $p with its unit's flags"
done
# What needs state: the bridge's SQLite in its StateDirectory, owned by its user, and ready.
bport=$(grep -o '127.0.0.1:[0-9]*' /etc/default/hpcmon-alert-bridge)
curl -fsS --max-time 5 "http://$bport/-/ready" >/dev/null || fail "alert bridge not ready (storage in /var/lib/hpcmon-alert-bridge)"
[ "$(stat -c '%U %a' /var/lib/hpcmon-alert-bridge)" = "hpcmon-alert-bridge 700" ] || fail "/var/lib/hpcmon-alert-bridge is $(stat -c '%U %a' /var/lib/hpcmon-alert-bridge)"
[ "$(stat -c '%U' /var/lib/hpcmon-alert-bridge/alerts.db 2>/dev/null)" = hpcmon-alert-bridge ] || fail "alerts.db not created by the bridge's user"
[ "$(stat -c '%U %a' /var/cache/hpcmon-ipmi)" = "hpcmon-ipmi-exporter 700" ] || fail "/var/cache/hpcmon-ipmi is $(stat -c '%U %a' /var/cache/hpcmon-ipmi)"
[ "$(stat -c '%U' /var/lib/hpcmon-actions/journal.db 2>/dev/null)" = hpcmon-actions ] || fail "the actions journal was not created by its user in its StateDirectory"
# The sandbox is real: a unit's user cannot write to the system, only to its own directories.
if scripts/lib/run-as-unit.sh /lib/systemd/system/hpcmon-alert-bridge.service touch /var/lib/hpcmon-alert-bridge/probe; then
  ok "the bridge's user writes in its StateDirectory"
else
  fail "the bridge's user cannot write in its StateDirectory"
fi
# A directory the user owns outside its unit's directories: read-only (ProtectSystem=strict).
probe=$(mktemp -d /var/lib/hpcmon-rw-probe.XXXXXX)
chown hpcmon-alert-bridge "$probe"
if scripts/lib/run-as-unit.sh /lib/systemd/system/hpcmon-alert-bridge.service touch "$probe/x" 2>/dev/null; then
  fail "the bridge's user could write $probe outside its StateDirectory"
else
  ok "outside its StateDirectory the system is read-only to the bridge's user"
fi
rm -rf "$probe"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
grep -il "panic" "$logs"/*.log && fail "a service panicked (logs above)"
rm -rf "$logs"

# ---- 6. remove, purge ----
declare -A owned=()
for p in "${PKGS[@]}"; do owned[$p]=$(dpkg -L "$p" | while read -r f; do [ -f "$f" ] && echo "$f"; done); done
dpkg -r "${PKGS[@]}" >/dev/null
for p in "${PKGS[@]}"; do
  [ -e "/usr/bin/$p" ] && fail "dpkg -r left /usr/bin/$p"
  [ -e "/etc/default/$p" ] || fail "dpkg -r removed the conffile /etc/default/$p (must stay until purge)"
  dpkg-query -W -f='${Status}\n' "$p" | grep -q "config-files" || fail "$p not in config-files state after dpkg -r"
done
dpkg -P "${PKGS[@]}" >/dev/null
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qv "not-installed" && fail "$p still known to dpkg after purge"
  for f in ${owned[$p]}; do [ -e "$f" ] && fail "purge left $f"; done
  for d in "/etc/default/$p" "/etc/$p" "/var/lib/$p" "/var/cache/$p"; do [ -e "$d" ] && fail "purge left $d"; done
done
[ -e /var/cache/hpcmon-ipmi ] && fail "purge left /var/cache/hpcmon-ipmi"
ok "removed (conffiles kept) and purged (nothing left; the system users stay, as Debian policy asks)"

echo "60-packages: $fails failure(s), $((SECONDS - t0)) s"
[ "$fails" -eq 0 ]
