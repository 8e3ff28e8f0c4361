#!/usr/bin/env bash
# Simulated BMCs for tests, benchmarks and the demo: OpenIPMI's ipmi_sim speaking real
# IPMI-over-LAN (RMCP/RMCP+) on 127.0.0.1, built from exporters/ipmi/testdata/sim/.
#
# Usage: scripts/ipmi-sim.sh start [N] | stop | status | console I CMD...
#   IPMI_SIM_DIR        state/log/pid directory (default: $REPO/.run/ipmi-sim)
#   IPMI_SIM_BASE_PORT  BMC i (1..N) listens on UDP 127.0.0.1:BASE+2*(i-1) and takes
#                       ipmi_sim console commands on TCP 127.0.0.1:BASE+2*(i-1)+1
#                       (default 22000; the ipmi block is 22000-22999)
#   IPMI_SIM_POWER=1    chassis power control: each BMC starts powered on and obeys
#                       Chassis Control (ipmi-power --on/--off, ipmi-chassis); its state is
#                       the file <dir>/state-I/power (1 on, 0 off), kept by this script's
#                       `chassis` command, which ipmi_sim runs as its chassis_control program
#   users: admin/password (ADMIN), monitor/monpass (USER)
# Read one with FreeIPMI (RMCP+ needs the opensesspriv workaround):
#   ipmi-sensors -h 127.0.0.1:22000 -u admin -p password -l ADMIN -D LAN_2_0 -W opensesspriv \
#       --sdr-cache-directory=/tmp/x
# Change a sensor at run time:  scripts/ipmi-sim.sh console 1 'sensor_set_value 0x20 0 1 95 1'
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SIM=$REPO/exporters/ipmi/testdata/sim
DIR=${IPMI_SIM_DIR:-$REPO/.run/ipmi-sim}
BASE=${IPMI_SIM_BASE_PORT:-22000}

need() { command -v "$1" >/dev/null || { echo "ipmi-sim.sh: $1 not found (scripts/install-deps.sh ipmi)" >&2; exit 3; }; }

console() { # console PORT CMD... : send commands to an ipmi_sim console (TCP), print replies
  local port=$1; shift
  # (never send "quit": it stops the simulator)
  exec 9<>"/dev/tcp/127.0.0.1/$port"
  for c in "$@"; do printf '%s\n' "$c" >&9; done
  timeout 0.3 cat <&9 | tr -cd '[:print:]\n' || true
  exec 9>&- 9<&-
}

case "${1:-}" in
start)
  need ipmi_sim; need sdrcomp
  n=${2:-1}; mkdir -p "$DIR"
  for f in "$DIR"/ipmi_sim-*.pid; do
    [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && { echo "ipmi-sim.sh: already running in $DIR ($f); stop first" >&2; exit 1; }
  done
  trap 'echo "ipmi-sim.sh: start failed; stopping" >&2; "$0" stop' ERR
  for i in $(seq 1 "$n"); do
    port=$((BASE + 2*(i-1))); cport=$((port + 1)); name=bmc$i
    st=$DIR/state-$i; rm -rf "$st"; mkdir -p "$st/ipmi_sim/$name"
    # The SDR repository is compiled per run (ipmi_sim loads it because of persist_sdr);
    # never keep one across runs: a damaged repo is rebuilt from the text.
    sdrcomp -o "$st/ipmi_sim/$name/sdr.20.main" "$SIM/bmc.sdrs"
    sed -e "s/^name .*/name \"$name\"/" -e "s/^\( *addr 127.0.0.1\) .*/\1 $port/" \
        -e "s/^console 127.0.0.1 .*/console 127.0.0.1 $cport/" "$SIM/lan.conf" > "$st/lan.conf"
    if [ "${IPMI_SIM_POWER:-0}" = 1 ]; then
      echo 1 > "$st/power"
      printf '  chassis_control "%s chassis %s"\n' "$REPO/scripts/ipmi-sim.sh" "$st/power" > "$st/chassis.conf"
      sed -i "/^set_working_mc/r $st/chassis.conf" "$st/lan.conf"
    fi
    # Own session (survives the caller's process group; stopped through the pid file), and
    # SIGPIPE ignored: ipmi_sim dies of it when a console client leaves before its banner.
    ( trap '' PIPE; exec nohup setsid ipmi_sim -c "$st/lan.conf" -f "$SIM/bmc.emu" -s "$st" -n \
        < /dev/null > "$DIR/ipmi_sim-$i.log" 2>&1 ) &
    echo $! > "$DIR/ipmi_sim-$i.pid"
    echo "$port $cport" > "$DIR/ipmi_sim-$i.ports"
  done
  # Ready when both the LAN (UDP) and console (TCP) sockets are bound (read from /proc, no
  # probe connections).
  for i in $(seq 1 "$n"); do
    port=$((BASE + 2*(i-1))); k=0
    until grep -q ":$(printf %04X "$port") " /proc/net/udp && grep -q ":$(printf %04X $((port+1))) 00000000:0000 0A" /proc/net/tcp; do
      kill -0 "$(cat "$DIR/ipmi_sim-$i.pid")" 2>/dev/null || { echo "ipmi_sim $i exited:" >&2; cat "$DIR/ipmi_sim-$i.log" >&2; false; }
      sleep 0.05; k=$((k+1)); [ $k -ge 200 ] && { echo "ipmi_sim $i not answering" >&2; false; }
    done
    sleep 0.05  # a port held by someone else looks bound too: the sim must still be alive
    kill -0 "$(cat "$DIR/ipmi_sim-$i.pid")" 2>/dev/null || { echo "ipmi_sim $i exited:" >&2; cat "$DIR/ipmi_sim-$i.log" >&2; false; }
  done
  echo "ipmi_sim x$n up: LAN udp 127.0.0.1:$BASE+2i, console tcp +1, state $DIR" ;;
stop)
  # Signal all first, then wait for all (ipmi_sim can take seconds to act on SIGTERM; it
  # keeps no state worth a clean exit, so survivors get SIGKILL after 2 s).
  shopt -s nullglob
  pids=()
  for f in "$DIR"/ipmi_sim-*.pid; do
    p=$(cat "$f"); pids+=("$p")
    kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true
  done
  for _ in $(seq 20); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -f "$DIR"/ipmi_sim-*.pid
  echo "ipmi_sim stopped ($DIR)" ;;
status)
  shopt -s nullglob
  for f in "$DIR"/ipmi_sim-*.pid; do
    b=$(basename "$f" .pid)
    if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$b running pid $(cat "$f") ports $(cat "$DIR/$b.ports")"; else echo "$b stale"; fi
  done ;;
chassis) # chassis FILE get power | set power VALUE  (ipmi_sim's chassis_control protocol)
  f=${2:?state file}; shift 2
  case "${1:-}" in
    get) echo "power:$(cat "$f" 2>/dev/null || echo 0)" ;;
    set) shift; while [ $# -ge 2 ]; do [ "$1" = power ] && case "$2" in 0|1) echo "$2" > "$f" ;; esac; shift 2; done ;;
    *) exit 1 ;;
  esac ;;
console)
  i=${2:?BMC number}; shift 2
  console $((BASE + 2*(i-1) + 1)) "$@" ;;
*) echo "usage: $0 start [N]|stop|status|console I CMD...|chassis FILE get|set ..." >&2; exit 2 ;;
esac
