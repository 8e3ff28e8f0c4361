#!/usr/bin/env bash
# A simulated Modbus TCP gateway for tests, benchmarks and the demo: Debian's python3-pymodbus
# on TCP 127.0.0.1 (scripts/lib/room_modbus_sim.py), serving the register maps of the
# built-in templates (unit 1 temperature/humidity transmitter, unit 2 3-phase power meter,
# unit 3 precision air conditioner) or whatever DIR/state.json says.
#
# Usage: scripts/modbus-sim.sh start | stop | status | set UNIT TABLE ADDR VALUE...
#   MODBUS_SIM_DIR   state/log/pid directory (default: $REPO/.run/modbus-sim), made 0700
#   MODBUS_SIM_PORT  TCP port on 127.0.0.1 (default 23502; the room block is 23000-23999)
# `set` writes registers (TABLE: holding | input | coils | discrete; consecutive VALUEs go to
# consecutive addresses), e.g. the transmitter's temperature to 31.5 C:
#   scripts/modbus-sim.sh set 1 input 0 315
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${MODBUS_SIM_DIR:-$REPO/.run/modbus-sim}
PORT=${MODBUS_SIM_PORT:-23502}
PY=/usr/bin/python3   # Debian's python, which has python3-pymodbus

case "${1:-}" in
start)
  "$PY" -c 'import pymodbus.server' 2>/dev/null || { echo "modbus-sim.sh: python3-pymodbus not importable (scripts/install-deps.sh room)" >&2; exit 3; }
  mkdir -p "$DIR"; chmod 700 "$DIR"
  if [ -f "$DIR/sim.pid" ] && kill -0 "$(cat "$DIR/sim.pid")" 2>/dev/null; then
    echo "modbus-sim.sh: already running in $DIR; stop first" >&2; exit 1
  fi
  setsid "$PY" "$REPO/scripts/lib/room_modbus_sim.py" "$PORT" "$DIR/state.json" < /dev/null > "$DIR/sim.log" 2>&1 &
  echo $! > "$DIR/sim.pid"
  hex=$(printf '%04X' "$PORT")
  for _ in $(seq 1 200); do
    grep -q "0100007F:$hex 00000000:0000 0A" /proc/net/tcp && break
    kill -0 "$(cat "$DIR/sim.pid")" 2>/dev/null || { echo "modbus sim exited:" >&2; cat "$DIR/sim.log" >&2; exit 1; }
    sleep 0.05
  done
  grep -q "0100007F:$hex 00000000:0000 0A" /proc/net/tcp || { echo "modbus sim did not listen on 127.0.0.1:$PORT" >&2; exit 1; }
  echo "modbus sim on tcp:127.0.0.1:$PORT (pid $(cat "$DIR/sim.pid"), dir $DIR)"
  ;;
stop)
  if [ -f "$DIR/sim.pid" ]; then
    pid=$(cat "$DIR/sim.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/sim.pid"
  fi
  ;;
status)
  [ -f "$DIR/sim.pid" ] && kill -0 "$(cat "$DIR/sim.pid")" 2>/dev/null && { echo "running (pid $(cat "$DIR/sim.pid"), tcp 127.0.0.1:$PORT)"; exit 0; }
  echo "not running"; exit 3
  ;;
set)
  shift; mkdir -p "$DIR"
  # (starts from the built-in units when there is no state file yet)
  "$PY" - "$REPO/scripts/lib/room_modbus_sim.py" "$DIR/state.json" "$@" <<'PY'
import json, os, sys
sim, path, unit, table, addr, *vals = sys.argv[1:]
try:
    s = json.load(open(path))
except (OSError, ValueError):
    import importlib.util
    spec = importlib.util.spec_from_file_location("sim", sim)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    s = {"units": json.loads(json.dumps(m.DEFAULT_UNITS))}
regs = s.setdefault("units", {}).setdefault(unit, {}).setdefault(table, {})
for i, v in enumerate(vals):
    regs[str(int(addr) + i)] = int(v, 0)
tmp = path + ".tmp"
json.dump(s, open(tmp, "w"))
os.replace(tmp, path)
PY
  ;;
*)
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2
  ;;
esac
