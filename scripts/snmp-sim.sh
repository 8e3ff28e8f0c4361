#!/usr/bin/env bash
# A simulated UPS and PDU/environment probe for tests, benchmarks and the demo: Debian's
# net-snmp snmpd on UDP 127.0.0.1, serving UPS-MIB (RFC 1628) and ENTITY-SENSOR-MIB rows by
# numeric OID through pass_persist (scripts/lib/room_snmp_agent.py), driven by a state file.
#
# Usage: scripts/snmp-sim.sh start | stop | status | set KEY=VALUE... | state
#   SNMP_SIM_DIR        config/state/log/pid directory (default: $REPO/.run/snmp-sim), made 0700
#   SNMP_SIM_PORT       UDP port on 127.0.0.1 (default 23161; the room block is 23000-23999)
#   SNMP_SIM_COMMUNITY  v2c read-only community (default public)
#   SNMP_SIM_V3_USER    an SNMPv3 user with SHA authentication and AES privacy (authPriv)
#   SNMP_SIM_V3_AUTH / SNMP_SIM_V3_PRIV   its passphrases (at least 8 characters)
# The community and passphrases go into the private config file only (never argv).
# `set` rewrites DIR/state.json atomically, e.g.:
#   scripts/snmp-sim.sh set mains=off minutes=4 charge=20    # on battery, battery low
#   scripts/snmp-sim.sh set mains=on load=120 bypass=true room_temp=31.5 'phase_amps=[30,12,9]'
# Read it: snmpwalk -v2c -c public -On 127.0.0.1:23161 .1.3.6.1.2.1.33
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SNMP_SIM_DIR:-$REPO/.run/snmp-sim}
PORT=${SNMP_SIM_PORT:-23161}
PY=/usr/bin/python3   # Debian's python (the agent uses only its standard library)
AGENT=$REPO/scripts/lib/room_snmp_agent.py

need() { [ -x "$1" ] || command -v "$1" >/dev/null || { echo "snmp-sim.sh: $1 not found (scripts/install-deps.sh room)" >&2; exit 3; }; }

set_state() { # KEY=VALUE... merged into state.json (values parsed as JSON, else strings)
  "$PY" - "$DIR/state.json" "$@" <<'PY'
import json, os, sys
path, pairs = sys.argv[1], sys.argv[2:]
try:
    s = json.load(open(path))
except (OSError, ValueError):
    s = {}
for p in pairs:
    k, _, v = p.partition("=")
    try:
        s[k] = json.loads(v)
    except ValueError:
        s[k] = v
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(s, f)
os.replace(tmp, path)
PY
}

case "${1:-}" in
start)
  need /usr/sbin/snmpd; need "$PY"
  mkdir -p "$DIR"; chmod 700 "$DIR"
  if [ -f "$DIR/snmpd.pid" ] && kill -0 "$(cat "$DIR/snmpd.pid")" 2>/dev/null; then
    echo "snmp-sim.sh: already running in $DIR; stop first" >&2; exit 1
  fi
  [ -f "$DIR/state.json" ] || echo '{}' > "$DIR/state.json"
  rm -rf "$DIR/persist"; mkdir -p "$DIR/persist"
  umask 077
  {
    echo "# Written by scripts/snmp-sim.sh"
    echo "agentaddress udp:127.0.0.1:$PORT"
    echo "dontLogTCPWrappersConnects yes"
    echo "rocommunity ${SNMP_SIM_COMMUNITY:-public} 127.0.0.1"
    if [ -n "${SNMP_SIM_V3_USER:-}" ]; then
      echo "createUser $SNMP_SIM_V3_USER SHA \"${SNMP_SIM_V3_AUTH:?}\" AES \"${SNMP_SIM_V3_PRIV:?}\""
      echo "rouser $SNMP_SIM_V3_USER priv"
    fi
    for sub in .1.3.6.1.2.1.33 .1.3.6.1.2.1.99 .1.3.6.1.2.1.47.1.1.1.1.7; do
      echo "pass_persist $sub $PY $AGENT $DIR/state.json $sub"
    done
  } > "$DIR/snmpd.conf"
  # -C: only this file; -f: foreground (we keep the pid); the persistent dir (engine boots,
  # v3 users) is private to this run. Own session: survives the caller's process group.
  SNMP_PERSISTENT_DIR=$DIR/persist setsid /usr/sbin/snmpd -f -C -c "$DIR/snmpd.conf" -Lf "$DIR/snmpd.log" -m NONE -M /dev/null \
    -p "$DIR/snmpd.pid.tmp" < /dev/null > /dev/null 2>&1 &
  echo $! > "$DIR/snmpd.pid"
  hex=$(printf '%04X' "$PORT")
  for _ in $(seq 1 100); do
    grep -q "0100007F:$hex " /proc/net/udp && break
    kill -0 "$(cat "$DIR/snmpd.pid")" 2>/dev/null || { echo "snmpd exited:" >&2; cat "$DIR/snmpd.log" >&2; exit 1; }
    sleep 0.05
  done
  grep -q "0100007F:$hex " /proc/net/udp || { echo "snmpd did not bind 127.0.0.1:$PORT" >&2; exit 1; }
  echo "snmpd on udp:127.0.0.1:$PORT (pid $(cat "$DIR/snmpd.pid"), dir $DIR)"
  ;;
stop)
  if [ -f "$DIR/snmpd.pid" ]; then
    pid=$(cat "$DIR/snmpd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/snmpd.pid" "$DIR/snmpd.pid.tmp"
  fi
  ;;
status)
  [ -f "$DIR/snmpd.pid" ] && kill -0 "$(cat "$DIR/snmpd.pid")" 2>/dev/null && { echo "running (pid $(cat "$DIR/snmpd.pid"), udp 127.0.0.1:$PORT)"; exit 0; }
  echo "not running"; exit 3
  ;;
set)
  shift; mkdir -p "$DIR"; set_state "$@"
  ;;
state)
  cat "$DIR/state.json"
  ;;
*)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2
  ;;
esac
