# Demo part: hpcmon-ipmi-exporter on 127.0.0.1:19290.
# deps: ipmi
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
#
# The local BMC is read on /metrics when the node has one (/dev/ipmi0); /metrics always has
# the node's environment sensors (env_*). Without a local BMC, two simulated BMCs (OpenIPMI
# ipmi_sim, scripts/ipmi-sim.sh, UDP 127.0.0.1:22940/22942) are started and scraped through
# the multi-target endpoint /ipmi?target=...&module=sim, with the password read from a file.
D=$RUN/ipmi
mkdir -p "$D"
chmod 700 "$D"
printf 'password\n' > "$D/bmc-password"
chmod 600 "$D/bmc-password"
cat > "$D/ipmi.yml" <<YAML
# Written by scripts/demo.d/20-ipmi.sh
modules:
  sim:
    user: admin
    password_file: $D/bmc-password
    privilege: admin
    driver: LAN_2_0
    workaround_flags: [opensesspriv]
    timeout: 4s
    collectors: [ipmi, chassis, bmc, sel, dcmi, bmc-watchdog]
environment:
  sources:
    - kind: hwmon
    - kind: thermal_zone
YAML

if [ -e /dev/ipmi0 ] || [ -e /dev/ipmi/0 ] || [ -e /dev/ipmidev/0 ]; then
  SIMS=0
else
  SIMS=2
  # ipmi_sim runs in its own session; a tracked helper stops the simulators on demo.sh stop.
  IPMI_SIM_DIR=$D/sim IPMI_SIM_BASE_PORT=22940 "$ROOT/scripts/ipmi-sim.sh" stop > /dev/null 2>&1 || true
  IPMI_SIM_DIR=$D/sim IPMI_SIM_BASE_PORT=22940 "$ROOT/scripts/ipmi-sim.sh" start "$SIMS"
  for i in $(seq 1 "$SIMS"); do demo_track "$(cat "$D/sim/ipmi_sim-$i.pid")" "ipmi_sim-$i"; done
fi

demo_spawn ipmi-exporter "$BIN/hpcmon-ipmi-exporter" \
  --web.listen-address=127.0.0.1:19290 \
  --config.file="$D/ipmi.yml" \
  --ipmi.sdr-cache-dir="$D/sdr-cache" \
  --ipmi.max-concurrency=8
demo_wait_http http://127.0.0.1:19290/-/ready ipmi-exporter 20

# The node's own /metrics: local BMC (if any) and environment sensors.
demo_scrape ipmi-local 127.0.0.1:19290 '    labels: {room: demo-room, rack: demo-rack}'
demo_url "ipmi exporter" "http://127.0.0.1:19290/"

if [ "$SIMS" -gt 0 ]; then
  # The standard multi-target pattern: the BMC addresses are the targets, relabelled into
  # the `target` parameter (and `instance`), and the exporter is the address scraped.
  demo_scrape ipmi 127.0.0.1:22940 \
    '    labels: {room: demo-room, rack: rack-a}' \
    '  - targets: ["127.0.0.1:22942"]' \
    '    labels: {room: demo-room, rack: rack-b}' \
    'metrics_path: /ipmi' \
    'params: {module: [sim]}' \
    'scrape_timeout: 4s' \
    'relabel_configs:' \
    '  - source_labels: [__address__]' \
    '    target_label: __param_target' \
    '  - source_labels: [__param_target]' \
    '    target_label: instance' \
    '  - target_label: __address__' \
    '    replacement: 127.0.0.1:19290'
  demo_url "ipmi: simulated BMC 1" "http://127.0.0.1:19290/ipmi?target=127.0.0.1:22940&module=sim"
  demo_url "ipmi: heat up BMC 1" "IPMI_SIM_DIR=$D/sim IPMI_SIM_BASE_PORT=22940 scripts/ipmi-sim.sh console 1 'sensor_set_value 0x20 0 4 37 1'"
fi
