#!/usr/bin/env bash
# Runs a service's ExecStart the way its systemd unit would, on a machine without systemd as
# PID 1 (the package test, scripts/test.d/60-packages.sh):
#
#   run-as-unit.sh UNIT_FILE [COMMAND...]   (as root; execs in the foreground)
#
# With COMMAND, that runs instead of ExecStart, in the same sandbox (for checks such as
# "cannot write to /usr").
# Emulated from the unit file: User=/Group= (with the user's supplementary groups),
# EnvironmentFile= (a leading "-": optional; NAME=value / NAME="value" lines), Environment=,
# ExecStart= ($NAME and ${NAME} expanded; an unquoted $NAME split into words, as systemd
# does), NoNewPrivileges=yes, CapabilityBoundingSet= / AmbientCapabilities= (empty: none),
# UMask=, ProtectSystem=strict (every mount read-only except /dev, /proc, /sys and the
# unit's own directories), ProtectHome=yes|read-only, PrivateTmp=yes, and
# StateDirectory=/CacheDirectory= with their *Mode= (created, owned by the user, writable).
# Not emulated (systemd-analyze verify and security check them): system call filters, device
# policy, address families, namespace and kernel protections.
set -euo pipefail
unit=${1:?usage: run-as-unit.sh UNIT_FILE [COMMAND...]}
shift
[ "$(id -u)" = 0 ] || { echo "run-as-unit: needs root" >&2; exit 1; }

values() { # KEY: every value of KEY= in [Service], in order
  awk -v k="$1" '
    /^\[/ { s = ($0 == "[Service]") }
    s && index($0, k "=") == 1 { print substr($0, length(k) + 2) }' "$unit"
}
last() { values "$1" | tail -n 1; }

user=$(last User); group=$(last Group)
[ -n "$user" ] || { echo "run-as-unit: $unit has no User=" >&2; exit 1; }
group=${group:-$user}
getent passwd "$user" >/dev/null || { echo "run-as-unit: no user $user" >&2; exit 1; }
[ "$(last NoNewPrivileges)" = yes ] || { echo "run-as-unit: $unit lacks NoNewPrivileges=yes" >&2; exit 1; }

# The environment: EnvironmentFile= then Environment=.
declare -A env=()
while IFS= read -r f; do
  optional=0
  case "$f" in -*) optional=1; f=${f#-} ;; esac
  if [ ! -r "$f" ]; then
    [ "$optional" = 1 ] && continue
    echo "run-as-unit: EnvironmentFile $f missing" >&2; exit 1
  fi
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*|';'*) continue ;; esac
    k=${line%%=*}; v=${line#*=}
    case "$v" in \"*\") v=${v#\"}; v=${v%\"} ;; \'*\') v=${v#\'}; v=${v%\'} ;; esac
    env[$k]=$v
  done < "$f"
done < <(values EnvironmentFile)
while IFS= read -r e; do
  [ -n "$e" ] || continue
  e=${e#\"}; e=${e%\"}
  env[${e%%=*}]=${e#*=}
done < <(values Environment)

# ExecStart: words; "$NAME" alone splits on whitespace, ${NAME} stays one word.
exec_start=$(last ExecStart)
argv=()
read -r -a words <<< "$exec_start"
[ $# -eq 0 ] || words=()
for w in "${words[@]}"; do
  if [[ $w =~ ^\$([A-Za-z_][A-Za-z0-9_]*)$ ]]; then
    read -r -a split <<< "${env[${BASH_REMATCH[1]}]:-}"
    argv+=("${split[@]}")
  elif [[ $w =~ ^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$ ]]; then
    argv+=("${env[${BASH_REMATCH[1]}]:-}")
  else
    argv+=("$w")
  fi
done
[ $# -eq 0 ] || argv=("$@")

# Directories systemd would create for the unit.
writable=()
mkdirs() { # BASE KEY MODEKEY
  local d mode
  mode=$(last "$3"); mode=${mode:-0755}
  for d in $(values "$2"); do
    install -d -o "$user" -g "$group" -m "$mode" "$1/$d"
    chown "$user:$group" "$1/$d"; chmod "$mode" "$1/$d"
    writable+=("$1/$d")
  done
}
mkdirs /var/lib StateDirectory StateDirectoryMode
mkdirs /var/cache CacheDirectory CacheDirectoryMode

caps=$(last CapabilityBoundingSet)
[ -z "$caps" ] || { echo "run-as-unit: only an empty CapabilityBoundingSet is emulated (got $caps)" >&2; exit 1; }
umask_v=$(last UMask); umask_v=${umask_v:-0022}
protect_system=$(last ProtectSystem); protect_home=$(last ProtectHome); private_tmp=$(last PrivateTmp)

env_args=()
for k in "${!env[@]}"; do env_args+=("$k=${env[$k]}"); done

# The mount namespace: read-only system, the unit's directories writable, private /tmp.
setup=$(cat <<'SH'
set -e
mount --make-rprivate /
if [ "$PROTECT_SYSTEM" = strict ]; then
  # Every mount read-only, bounded in time; FUSE and network file systems are skipped (a
  # hung one, e.g. another test's stalled FUSE mount, would block the remount).
  findmnt -rn -o TARGET,FSTYPE | while read -r m t; do
    case "$m" in /dev|/dev/*|/proc|/proc/*|/sys|/sys/*) continue ;; esac
    case "$t" in fuse|fuse.*|fuseblk|nfs|nfs4|cifs|smb3|9p|ceph|glusterfs|lustre) continue ;; esac
    m=$(printf '%s' "$m" | sed 's/\\x20/ /g')   # findmnt -r writes a blank as \x20
    timeout 5 mount -o remount,bind,ro "$m" 2>/dev/null || true
  done
fi
for d in $WRITABLE; do mount --bind "$d" "$d"; mount -o remount,bind,rw "$d"; done
if [ "$PRIVATE_TMP" = yes ]; then
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  mount -t tmpfs -o mode=1777 tmpfs /var/tmp
fi
case "$PROTECT_HOME" in
  yes) for h in /home /root /run/user; do [ -d "$h" ] && mount -t tmpfs -o ro,mode=0755 tmpfs "$h"; done ;;
esac
umask "$UMASK_V"
exec setpriv --reuid="$RUN_USER" --regid="$RUN_GROUP" --init-groups --no-new-privs \
  --bounding-set=-all --inh-caps=-all -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
SH
)
exec unshare --mount -- env PROTECT_SYSTEM="$protect_system" PROTECT_HOME="$protect_home" \
  PRIVATE_TMP="$private_tmp" WRITABLE="${writable[*]}" UMASK_V="$umask_v" \
  RUN_USER="$user" RUN_GROUP="$group" \
  sh -c "$setup" run-as-unit "${env_args[@]}" "${argv[@]}"
