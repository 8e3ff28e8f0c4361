# Demo part: the machine room (power and environment) on hpcmon-ipmi-exporter's /snmp and
# /modbus endpoints, served by a second exporter instance on 127.0.0.1:19291.
# deps: room
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
#
# Simulated devices, all on 127.0.0.1: a UPS and a PDU/environment probe in net-snmp's snmpd
# (scripts/snmp-sim.sh, UDP 23161, community from a private file), and a Modbus TCP gateway
# with a temperature/humidity transmitter (unit 1), a 3-phase meter (unit 2) and a precision
# air conditioner (unit 3) (scripts/modbus-sim.sh, TCP 23502). Pulling the simulated mains
# (the command listed at the end) puts the UPS on battery; UPSOnBattery fires 15 s later and
# reaches the alert bridge's alert log.
D=$RUN/room
mkdir -p "$D"
chmod 700 "$D"
COMMUNITY=demo-room-$RANDOM$RANDOM
printf '%s\n' "$COMMUNITY" > "$D/snmp-community"
chmod 600 "$D/snmp-community"

export SNMP_SIM_DIR=$D/snmp SNMP_SIM_PORT=23161
"$ROOT/scripts/snmp-sim.sh" stop > /dev/null 2>&1 || true
rm -f "$D/snmp/state.json"
SNMP_SIM_COMMUNITY=$COMMUNITY "$ROOT/scripts/snmp-sim.sh" start
demo_track "$(cat "$D/snmp/snmpd.pid")" snmpd-room

export MODBUS_SIM_DIR=$D/modbus MODBUS_SIM_PORT=23502
"$ROOT/scripts/modbus-sim.sh" stop > /dev/null 2>&1 || true
rm -f "$D/modbus/state.json"
"$ROOT/scripts/modbus-sim.sh" start
demo_track "$(cat "$D/modbus/sim.pid")" modbus-sim

cat > "$D/room.yml" <<YAML
# Written by scripts/demo.d/25-room.sh
snmp:
  auths:
    room:
      version: 2
      community_file: $D/snmp-community
      targets: ['127.0.0.1:23161']
modbus:
  targets: ['127.0.0.1:23502']
YAML

demo_spawn room-exporter "$BIN/hpcmon-ipmi-exporter" \
  --web.listen-address=127.0.0.1:19291 \
  --config.file="$D/room.yml" \
  --ipmi.local=off \
  --ipmi.sdr-cache-dir="$D/sdr-cache" \
  --no-collector.env
demo_wait_http http://127.0.0.1:19291/-/ready room-exporter 20

# The multi-target pattern: the device is the target, relabelled into `target` (and
# `instance`); the exporter is the address scraped.
relabel=(
  'relabel_configs:'
  '  - source_labels: [__address__]'
  '    target_label: __param_target'
  '  - source_labels: [__param_target]'
  '    target_label: instance'
  '  - target_label: __address__'
  '    replacement: 127.0.0.1:19291'
)
demo_scrape room-snmp 127.0.0.1:23161 \
  '    labels: {room: demo-room}' \
  'metrics_path: /snmp' \
  'params: {module: [ups_mib, entity_sensor], auth: [room]}' \
  "${relabel[@]}"
for unit in 1:th_transmitter 2:power_meter_3phase 3:precision_ac; do
  demo_scrape "room-modbus-${unit#*:}" 127.0.0.1:23502 \
    '    labels: {room: demo-room}' \
    'metrics_path: /modbus' \
    "params: {module: [${unit#*:}], sub_target: ['${unit%%:*}']}" \
    "${relabel[@]}"
done
demo_url "room: UPS and probe (SNMP)" "http://127.0.0.1:19291/snmp?target=127.0.0.1:23161&module=ups_mib&module=entity_sensor&auth=room"
demo_url "room: room sensor (Modbus)" "http://127.0.0.1:19291/modbus?target=127.0.0.1:23502&module=th_transmitter&sub_target=1"
demo_url "room: pull the mains" "SNMP_SIM_DIR=$D/snmp scripts/snmp-sim.sh set mains=off minutes=12"
demo_url "room: restore the mains" "SNMP_SIM_DIR=$D/snmp scripts/snmp-sim.sh set mains=on minutes=45"
demo_url "room: heat the room (31.5 C)" "MODBUS_SIM_DIR=$D/modbus scripts/modbus-sim.sh set 1 input 0 315"
